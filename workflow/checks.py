"""Pre-flight checks: small, deterministic, explainable rules run on every draft.

No network, no model, standard library only. Each rule is one small function that returns the
spans it found with a one-line message and a suggestion; `RULES` (near the end) is the registry:
rule id → function and default severity. Blocking findings stop a draft in the compose modal;
warnings go on the approval card, where the approver confirms them.

The reference for what goes wrong is a real outage, tweeted for six hours by a hosting provider:
a "ciabatta" (power strip) blamed, sarcastic replies ("amico caro, tu pensi che…???"), questions
thrown back at users ("E lo chiedi a noi??"), the Pope's visit as an excuse, "three Cisco
switches, all broken", and no word on when it would be fixed.

Languages: every word list lives in a `Lexicon`, one per language in `LEXICONS`. Adding a
language means adding one `Lexicon`; nothing else changes. With `lang=None` every lexicon is
used at once (drafts mix languages, and one language's phrases rarely occur in another).

Phrases in word lists are matched case-insensitively, as whole words, on NFC text:
- a `*` at the end of a word matches any letters: `rott*` = rotto, rotti, rottura;
- `'` matches both apostrophes (' and ’), and `è` also matches `é` and `e'` (US keyboards);
- a space matches any run of white space.

Speed: rules must run in well under a millisecond. Python's `re` tries every branch of an
alternation at every position, and IGNORECASE makes that several times slower. So the text is
lower-cased once (keeping offsets), split into words once, and each phrase list is indexed by
its first word: a phrase is only tried where its first word occurs. Patterns for secrets, IPs
and host names start with a literal or a character class so `re` can skip ahead.

Spans are character offsets in the text as given (not the normalised one). Secrets never leave
this module: their excerpt is redacted and every other rule sees them blanked out.
"""

from __future__ import annotations

import argparse
import difflib
import ipaddress
import json
import re
import unicodedata
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import cached_property, lru_cache
from itertools import pairwise
from typing import Any, NoReturn, TextIO

# ---------------------------------------------------------------------------------------------
# Public types
# ---------------------------------------------------------------------------------------------


class Severity(StrEnum):
    BLOCKING = "blocking"  # the draft cannot be submitted
    WARNING = "warning"  # shown to the approver, who confirms it


@dataclass(frozen=True)
class Finding:
    rule: str  # stable id, see RULES
    severity: Severity
    message: str  # one line, plain text: what is wrong
    start: int  # span in the text, character offsets; 0, 0 for whole-draft findings
    end: int
    excerpt: str  # the offending words; for secrets a redacted form, never the secret
    suggestion: str | None  # what to write instead

    def as_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "severity": str(self.severity),
            "message": self.message,
            "start": self.start,
            "end": self.end,
            "excerpt": self.excerpt,
            "suggestion": self.suggestion,
        }


@dataclass(frozen=True)
class RecentPost:
    """A post already published, for the repetition and burst rules. Naive times are UTC."""

    text: str
    at: datetime


# ---------------------------------------------------------------------------------------------
# Word lists, one Lexicon per language
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Lexicon:
    """Everything one language contributes. Phrase syntax: see the module docstring."""

    # Short everyday words: in capitals they are shouting, never an acronym ("NOT", "MAI").
    shouted_words: tuple[str, ...]
    # Vocatives that single out one reader in a broadcast ("dear friend", "amico caro").
    address: tuple[str, ...]
    # "hi", "ciao": followed by a capitalised name and a comma, a reply to one person.
    greetings: tuple[str, ...]
    # Words after a greeting that address everybody ("hi everyone", "ciao a tutti").
    greeting_everyone: tuple[str, ...]
    # Words right before an @handle that point at an account instead of talking to it.
    mention_pointers: tuple[str, ...]
    # Openings of questions that point to help, which a public update may ask.
    helpful_questions: tuple[str, ...]
    # Excuses and blame, wherever they appear ("not our fault", "colpa del fornitore").
    excuses: tuple[str, ...]
    # Words that name a cause ("due to", "a causa di") and the scapegoats that may follow them.
    cause_words: tuple[str, ...]
    scapegoats: tuple[str, ...]
    # Generic outsiders ("our provider", "il fornitore"): scapegoats, and like a vendor's name
    # when a fault word is in the same sentence ("our provider messed up").
    third_parties: tuple[str, ...]
    # After a scapegoat, these make it a source, not a cause: "because some customers reported …".
    reporting_verbs: tuple[str, ...]
    # Words allowed between a cause word and a scapegoat: articles, possessives, adjectives.
    # Anything else ends the search, so "due to a bug in the customer dashboard" is not blame.
    cause_fillers: tuple[str, ...]
    # Next to a vendor's name in the same sentence, these make it blame ("Cisco … broken").
    fault_words: tuple[str, ...]
    sarcasm: tuple[str, ...]
    speculation: tuple[str, ...]
    # A time or a delay: (the words it can start with, a regular expression on lower-case text).
    next_step: tuple[tuple[tuple[str, ...], str], ...]
    # The update announces the end of the incident: no next update time needed.
    resolved: tuple[str, ...]
    # Right before a `resolved` word, these undo it ("partially restored", "non ancora risolto").
    not_yet: tuple[str, ...]
    # Frequent function words, to guess the language for example sentences.
    common_words: tuple[str, ...]
    # Example sentences used in suggestions, by rule id.
    examples: Mapping[str, str]


# fmt: off
ENGLISH = Lexicon(
    shouted_words=(
        "all", "and", "any", "are", "ask", "back", "bad", "be", "but", "by", "call", "can", "did",
        "do", "done", "down", "ever", "fine", "fix", "for", "from", "get", "go", "gone", "got", "had",
        "has", "have", "help", "how", "is", "just", "know", "like", "lost", "me", "more", "much",
        "must", "my", "no", "not", "now", "off", "once", "only", "our", "out", "over", "read", "said",
        "see", "slow", "so", "soon", "stop", "sure", "that", "the", "them", "they", "this", "to",
        "told", "up", "very", "wait", "was", "we", "well", "what", "when", "who", "why", "will",
        "with", "work", "yes", "you", "your",
    ),
    address=(
        "dear friend", "my friend", "my dear", "dear customer", "dear sir", "buddy", "mate", "pal",
        "dude", "bro", "sir", "madam", "ma'am", "young man", "sweetie", "honey",
    ),
    greetings=("hi", "hello", "hey", "dear"),
    greeting_everyone=("everyone", "everybody", "all", "folks", "there", "team", "customers", "users"),
    mention_pointers=("follow", "following", "on", "via", "at", "from"),
    helpful_questions=(
        "still seeing", "still having", "still experiencing", "still affected", "need help",
        "have questions", "any questions", "questions", "need assistance",
    ),
    excuses=(
        "not our fault", "isn't our fault", "is not our fault", "wasn't our fault", "was not our fault",
        "no fault of ours", "no fault of our own", "nothing we can do", "nothing we could do",
        "nothing to do with us", "not on our side", "not on our end", "fine on our side",
        "fine on our end", "beyond our control", "outside our control", "out of our control",
        "out of our hands", "not our problem", "not ours", "your fault", "user error", "their fault", "to blame",
        "blame", "blamed", "act of god", "you should have", "you should've", "if you had read",
        "if you'd read", "if you had bothered", "the pope", "pope's", "papal", "your isp",
        "your internet provider", "your connection", "your router", "your modem", "on your side",
        "nothing is broken on our", "nothing wrong on our", "no problem on our",
    ),
    cause_words=(
        "due to", "because", "because of", "caused by", "blame on", "blamed on", "owing to", "courtesy of",
        "the problem is", "the issue is", "the fault is", "with this", "with all this", "with all the",
    ),
    scapegoats=(
        "traffic", "weather", "storm*", "heatwave", "heat wave", "heat", "lightning", "rain", "snow",
        "flood*", "pope", "visit", "crowd*", "customer*", "user*", "someone", "somebody", "hacker*",
        "intern",
    ),
    reporting_verbs=("reported", "report", "reporting", "asked", "told", "noticed", "contacted", "wrote"),
    third_parties=(
        "vendor*", "supplier*", "provider*", "contractor*", "carrier*", "partner*", "landlord",
        "electrician*", "power company", "electricity company", "utility company", "isp", "upstream",
        "third party", "third-party", "third parties",
    ),
    cause_fillers=(
        "the", "a", "an", "our", "their", "some", "one", "of", "many", "several", "heavy", "high",
        "huge", "massive", "unexpected", "unusual", "exceptional", "abnormal", "extreme", "bad",
        "severe", "sudden", "increased", "large", "big", "crazy", "insane", "local", "nearby",
        "external", "another", "other", "careless", "misconfigured", "problem", "problems", "issue",
        "issues", "outage", "failure", "fault", "error", "errors", "incident", "at", "with", "from",
        "by", "network", "dns", "cloud", "hosting", "power", "internet", "uplink",
    ),
    fault_words=(
        "broken", "faulty", "defective", "failed", "failing", "failure", "failures", "fault", "faults",
        "bug", "bugs", "buggy", "blame*", "crap", "crappy", "junk", "garbage", "useless", "let us down",
        "screwed up", "messed up", "dropped the ball",
    ),
    sarcasm=(
        "obviously", "clearly", "of course", "seriously?", "seriously,", "are you serious",
        "are you seriously", "really?", "duh", "sigh", "smh", "facepalm", "ugh", "meh", "yeah right",
        "whatever", "good luck", "newsflash", "news flash", "as we said", "as we already said",
        "as already said", "as we've said", "as we have said", "as already explained",
        "as we already explained", "like we said", "like we recommend", "like we told you",
        "as we told you", "we told you", "believe it or not", "surprise surprise", "congratulations",
        "congrats", "thanks a lot", "thanks for nothing", "no offense", "no offence",
        "with all due respect", "happy now?", "satisfied?", "when it's back", "stop emailing",
        "stop asking", "stop complaining", "stop spamming", "stop tagging", "stop calling", "calm down",
        "relax", "chill", "not rocket science", "read the docs", "read the faq", "rtfm", "just wait",
        "be patient",
    ),
    speculation=(
        "probably", "maybe", "perhaps", "possibly", "apparently", "presumably", "supposedly",
        "we think", "we believe", "we guess", "we suspect", "we assume", "we're guessing", "i think",
        "i guess", "i believe", "it seems", "seems like", "seems to be", "looks like", "it appears",
        "appears to be", "likely", "most likely", "might be caused", "may be caused",
        "could be caused", "might be due", "may be due", "could be due", "might have been",
        "may have been", "could have been", "not sure", "no idea", "who knows", "best guess",
        "our guess", "in theory",
    ),
    next_step=(
        (("within", "in", "every", "over"),
         r"(?:within|in|every|over)\s+(?:the\s+next\s+|about\s+|around\s+|roughly\s+|approximately\s+)?"
         r"(?:\d+|an?|one|two|three|four|five|six|ten|fifteen|twenty|thirty|forty[- ]five|half\s+an)"
         r"\s+(?:more\s+)?(?:minutes?|mins?|hours?|hrs?|(?:working\s+|business\s+)?days?)"),
        (("within", "in", "over"), r"(?:within|in|over)\s+the\s+(?:next\s+)?hour"),
        (("every",), r"every\s+(?:hour|half\s+hour)"),
        (("tomorrow", "tonight", "this", "end", "the"),
         r"(?:tomorrow|tonight|this\s+(?:morning|afternoon|evening)|(?:the\s+)?end\s+of\s+(?:the\s+)?day)"),
        (("by", "on", "until", "before", "next"),
         r"(?:by|on|until|before|next)\s+(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday)"),
        (("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"),
         r"(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday),?\s+\d{1,2}(?!\d)"),
    ),
    resolved=(
        "resolved", "has been fixed", "have been fixed", "is fixed", "are fixed", "fully restored",
        "has been restored", "have been restored", "is restored", "are restored", "back to normal",
        "back online", "back up", "all systems operational", "completed", "is complete",
        "now complete", "fully recovered", "incident report", "post-mortem", "postmortem",
        "root cause analysis",
    ),
    not_yet=(
        "partially", "partly", "mostly", "largely", "not yet", "not", "will be", "to be", "should be",
        "hope to be", "expect to be",
    ),
    common_words=(
        "the", "and", "we", "are", "is", "to", "of", "our", "for", "on", "with", "be", "this", "has",
        "have", "will", "you", "it", "update", "next", "some", "at",
    ),
    examples={
        "question": 'State the answer instead, e.g. "Logins fail for some customers; we are restoring the service."',
        "speculation": 'Say only what you have confirmed, e.g. "We are investigating the cause."',
        "blame": 'Say what failed and what you are doing, e.g. "A network switch failed; we are replacing it."',
        "no_next_step": 'End with a time, e.g. "Next update by 14:30 UTC."',
    },
)

ITALIAN = Lexicon(
    shouted_words=(
        "basta", "che", "ci", "come", "cosa", "dove", "ecco", "già", "giù", "ha", "hai", "ho", "ma",
        "mai", "no", "noi", "non", "ora", "per", "più", "qui", "si", "sì", "sono", "su", "tu", "vero",
        "voi", "zero",
    ),
    address=(
        "amico caro", "caro amico", "cara amica", "amica cara", "amico mio", "amica mia", "carissimo",
        "carissima", "gentile cliente", "caro cliente", "cara cliente", "caro utente", "cara utente",
        "tu",
    ),
    greetings=("ciao", "salve", "buongiorno", "buonasera", "caro", "cara", "gentile"),
    greeting_everyone=("tutti", "a", "clienti", "utenti"),
    mention_pointers=("segui", "seguite", "seguiteci", "seguici", "su", "da", "di"),
    helpful_questions=(
        "hai ancora", "avete ancora", "riscontri ancora", "riscontrate ancora", "serve aiuto",
        "hai bisogno", "avete bisogno", "hai domande", "avete domande", "domande",
    ),
    excuses=(
        "non è colpa nostra", "non è stata colpa nostra", "non è nostra la colpa", "non abbiamo colpa",
        "mica colpa", "colpa vostra", "colpa tua", "colpa loro", "per colpa", "colpa d*",
        "non dipende da noi", "non dipendeva da noi", "indipendente dalla nostra volontà",
        "indipendenti dalla nostra volontà", "forza maggiore", "non possiamo farci nulla",
        "non possiamo farci niente", "non potevamo farci nulla", "non potevamo farci niente",
        "il problema non è nostro", "non è un problema nostro", "il problema è vostro",
        "il problema è tuo", "problema vostro", "problema tuo", "errore dell'utente", "errore vostro",
        "errore tuo", "avreste dovuto", "avresti dovuto", "il papa", "del papa", "visita papale",
        "il tuo provider", "il vostro provider", "la tua connessione", "la vostra connessione",
        "problema del fornitore", "problema del provider", "problema dell'operatore",
        "guasto del fornitore", "guasto del provider", "non nostro", "non nostra", "il tuo router",
        "il vostro router", "il tuo modem", "il vostro modem",
    ),
    cause_words=(
        "a causa d*", "per colpa d*", "dovut* a", "dovut* al*", "dovut* ai", "dovut* agli", "causat* da*",
        "per via d*", "perché", "il problema è d*", "il guasto è d*", "con questo", "con questa",
        "con tutto questo", "con tutta questa",
    ),
    scapegoats=(
        "traffico", "maltempo", "temporal*", "caldo", "fulmin*", "pioggia", "neve", "alluvion*", "papa",
        "visita", "folla", "client*", "utent*", "qualcuno", "hacker", "ondata di calore",
    ),
    reporting_verbs=(
        "hanno segnalato", "ci hanno segnalato", "ha segnalato", "segnalano", "hanno chiesto", "chiedono",
        "ci scrivono", "ci hanno scritto",
    ),
    third_parties=(
        "fornitor*", "provider", "gestore", "operatore", "terze parti", "tecnici esterni",
        "elettricist*", "enel",
    ),
    cause_fillers=(
        "il", "lo", "la", "i", "gli", "le", "l", "un", "uno", "una", "del", "dello", "della", "dei",
        "degli", "delle", "dell", "al", "allo", "alla", "ai", "agli", "alle", "all", "di", "da", "nostro",
        "nostra", "nostri", "nostre", "alcuni", "alcune", "qualche", "forte", "forti", "intenso",
        "intensa", "eccezionale", "improvviso", "improvvisa", "anomalo", "anomala", "enorme",
        "elevato", "grande", "violento", "violenta", "esterno", "esterna", "esterni", "problema",
        "problemi", "guasto", "guasti", "errore", "errori", "interruzione", "presso",
    ),
    fault_words=(
        "rott*", "guast*", "difettos*", "bacat*", "colpa", "inutil*", "schifo", "spazzatura",
        "ci ha lasciato a piedi", "ci hanno lasciato a piedi", "hanno sbagliato", "ha sbagliato",
        "fatto un casino",
    ),
    sarcasm=(
        "ovviamente", "ovvio", "cioè", "certo che", "figurati", "figuriamoci", "ma dai", "ma va là",
        "ma davvero", "davvero?", "sul serio?", "ma sul serio", "come già detto", "come già spiegato",
        "come già scritto", "come avevamo già detto", "come abbiamo già detto",
        "come vi abbiamo già detto", "te l'avevamo detto", "ve l'avevamo detto", "lo sanno tutti",
        "mica", "macché", "boh", "vabbè", "bah", "mah", "complimenti", "grazie tante", "ci mancherebbe",
        "state calmi", "stai calmo", "calmatevi", "calmati", "rilassati", "rilassatevi", "smettila",
        "smettetela", "smettete di", "basta scrivere", "basta chiedere", "lamentarvi", "lamentarti",
        "leggete gli avvisi", "leggi gli avvisi", "non è difficile", "aspettate e basta", "contento?",
        "contenta?", "contenti?", "soddisfatto?", "soddisfatti?", "inutile scrivere", "inutile chiedere",
        "quando torna",
    ),
    speculation=(
        "forse", "probabilmente", "magari", "presumibilmente", "pensiamo che", "pensiamo sia",
        "crediamo che", "crediamo sia", "riteniamo che", "supponiamo", "ipotizziamo", "sembra che",
        "sembra essere", "sembrerebbe", "pare che", "a quanto pare", "potrebbe essere",
        "potrebbe trattarsi", "potrebbe dipendere", "non siamo sicuri", "chissà", "probabile",
        "in teoria", "dovrebbe essere", "dovrebbe trattarsi",
    ),
    next_step=(
        (("entro", "tra", "fra", "ogni"),
         r"(?:entro|tra|fra|ogni)\s+(?:circa\s+|i\s+prossimi\s+|le\s+prossime\s+)?"
         r"(?:(?:\d+|un|uno|una|due|tre|quattro|cinque|dieci|quindici|venti|trenta|quaranta|quarantacinque)"
         r"\s+(?:minuti|minuto|min|ore|ora|giorni|giorno)|mezz['’]ora|un['’]ora)"),
        (("nella", "nei", "nelle"),
         r"(?:nella\s+prossima\s+ora|nei\s+prossimi\s+\d+\s+minuti|nelle\s+prossime\s+\d+\s+ore)"),
        (("alle", "entro", "dalle", "verso", "ore"),
         r"(?:alle|entro\s+le|dalle|verso\s+le|ore)\s+(?:ore\s+)?\d{1,2}(?!\d)"),
        (("domani", "stasera", "stanotte", "in", "nel", "entro"),
         r"(?:domani|stasera|stanotte|in\s+serata|in\s+mattinata|nel\s+pomeriggio|entro\s+(?:fine\s+)?giornata)"),
        (("entro",), r"entro\s+(?:luned|marted|mercoled|gioved|venerd)[iì]|entro\s+(?:sabato|domenica)"),
        (("lunedì", "lunedi", "martedì", "martedi", "mercoledì", "mercoledi", "giovedì", "giovedi", "venerdì",
          "venerdi", "sabato", "domenica"),
         r"(?:(?:luned|marted|mercoled|gioved|venerd)[iì]|sabato|domenica),?\s+\d{1,2}(?!\d)"),
    ),
    resolved=(
        "risolt*", "ripristinat*", "tornat* alla normalità", "tornat* operativ*", "tornat* online",
        "completat*", "concluso", "conclusa", "terminat*", "rapporto sull'incidente",
        "analisi dell'incidente", "post-mortem",
    ),
    not_yet=(
        "parzialmente", "in parte", "non ancora", "non", "non è ancora", "non è stato", "non è stata",
        "sarà", "saranno", "verrà", "verranno", "dovrebbe essere", "per essere",
    ),
    common_words=(
        "il", "lo", "la", "gli", "le", "di", "che", "e", "è", "per", "non", "un", "una", "siamo",
        "stiamo", "sono", "del", "della", "alle", "dei", "ci", "vi", "abbiamo", "aggiornamento",
    ),
    examples={
        "question": 'State the answer instead, e.g. "Alcuni clienti non riescono ad accedere; '
                    'stiamo ripristinando il servizio."',
        "speculation": 'Say only what you have confirmed, e.g. "Stiamo verificando la causa."',
        "blame": 'Say what failed and what you are doing, e.g. "Si è guastato uno switch di rete; '
                 'lo stiamo sostituendo."',
        "no_next_step": 'End with a time, e.g. "Prossimo aggiornamento alle 14:30."',
    },
)

# fmt: on

LEXICONS: dict[str, Lexicon] = {"en": ENGLISH, "it": ITALIAN}

# Language-neutral: eye-rolls and friends, with any skin tone, gender or variation selector.
_SARCASM_EMOJI = re.compile(
    "[\U0001f644\U0001f612\U0001f926\U0001f937\U0001f624\U0001f611\U0001f643\U0001f60f\U0001f921"
    "\U0001f4a9\U0001f595\U0001f602\U0001f923\U0001f971\U0001f92c]"
    "[\u200d\u2640\u2642\ufe0f\U0001f3fb-\U0001f3ff]*"
)
# Laughter in any spelling, as a whole word: lol, lool, ahah, hahaha, eheh, xd, lmao, rofl.
_LAUGHTER_KEYS = ("lol*", "lool*", "loool*", "ahah*", "haha*", "ahha*", "eheh*", "lmao*", "rofl*", "xd*")
_LAUGHTER = r"a?(?:ha){2,}h?|h?(?:ah){2,}|(?:eh){2,}|lo+l|lmao|rofl|xd+"

# ---------------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------------

# Capitals that are not shouting. Compared case-insensitively; mixed-case words (IPv6, iOS) are
# never shouting anyway. `acronyms = [...]` in [checks] adds to these.
DEFAULT_ACRONYMS = frozenset(
    word.casefold()
    for word in (
        "PDU", "DNS", "API", "UTC", "GMT", "CET", "CEST", "BST", "EST", "EDT", "PST", "PDT", "IST", "HTTP", "HTTPS",
        "SSL", "TLS", "CDN", "VPN", "SSH", "SFTP", "FTP", "SMTP", "IMAP", "POP", "IP", "TCP", "UDP", "BGP", "ISP", "DC",
        "VM", "VPS", "CPU", "GPU", "RAM", "SSD", "HDD", "NVME", "RAID", "NAS", "SAN", "UPS", "HVAC", "ATS", "LAN",
        "WAN", "AWS", "GCP", "EU", "US", "USA", "UK", "IT", "ID", "OK", "SLA", "SLO", "FAQ", "URL", "SMS", "MFA", "SSO",
        "DB", "SQL", "PHP", "CMS", "WP", "SEO", "ETA", "RCA", "NOC", "SOC", "GDPR", "PEC", "SPID", "IVA", "SRL", "SPA",
        "CEO", "CTO", "CIO", "AM", "PM", "TV", "PC", "OS", "UI", "UX", "KB", "MB", "GB", "TB", "PB", "JSON", "XML",
        "CSV", "PDF", "IAM", "KMS", "RDS", "EKS", "GKE", "ACME", "LTE", "NAT", "DHCP", "NTP", "LDAP", "SAML", "OAUTH",
        "JWT", "REST", "SDK", "CLI", "CI", "CD", "QA", "DDOS", "SIM", "VOIP", "PBX", "ADSL", "VDSL", "FTTH", "FTTC",
        "MX", "SPF", "DKIM", "DMARC", "TTL", "ASN", "IX", "WAF", "HA", "DR", "RTO", "RPO", "APAC", "EMEA", "UE", "ASAP",
        "FYI", "TBD", "QR", "PIN", "OTP",
    )
)  # fmt: skip

# Vendors: blamed when named in the same sentence as a fault word. Matched as written or in
# capitals; names longer than four letters also in lower case ("dell'" is Italian, "tim" a name).
DEFAULT_VENDORS = (
    "Cisco", "Juniper", "Arista", "Huawei", "Dell", "HP", "HPE", "Lenovo", "Supermicro", "Intel", "AMD",
    "Nvidia", "Broadcom", "Microsoft", "Azure", "Google", "GCP", "Amazon", "AWS", "Oracle", "IBM", "VMware",
    "Red Hat", "Cloudflare", "Akamai", "Fastly", "Equinix", "Digital Realty", "OVH", "OVHcloud",
    "Hetzner", "DigitalOcean", "Linode", "Aruba", "Register.it", "TIM", "Telecom", "Telecom Italia", "Vodafone",
    "Fastweb", "WindTre", "Iliad", "Open Fiber", "Lumen", "Cogent", "Level 3", "Zayo", "NTT", "Telia",
    "Schneider", "APC", "Eaton", "Vertiv", "Enel", "Stripe", "PayPal", "Twilio", "SendGrid", "Mailgun",
)  # fmt: skip

# Internal or colloquial term → plain replacement. Keys use the phrase syntax (trailing * ok).
DEFAULT_GLOSSARY: tuple[tuple[str, str], ...] = (
    ("ciabatta", "power distribution unit"),
    ("ciabatte", "power distribution units"),
    ("power strip", "power distribution unit"),
    ("power strips", "power distribution units"),
    ("multipresa", "power distribution unit"),
    ("borked", "not working"),
    ("hosed", "not working"),
    ("nuked", "deleted"),
    ("fubar", "badly damaged"),
    ("blip", "brief interruption"),
    ("hiccup", "brief interruption"),
    ("k8s", "our hosting platform"),
    ("the box", "the server"),
    ("sev1", "major incident"),
    ("sev2", "incident"),
    ("rebootat*", "riavviato"),
    ("rebootare", "riavviare"),
    ("crashat*", "si è bloccato"),
    ("deployat*", "rilasciato"),
    ("fixat*", "corretto"),
    ("pushat*", "pubblicato"),
    ("scatolotto", "server"),
)

# Host name suffixes that never resolve on the public internet.
INTERNAL_SUFFIXES = ("internal", "local", "corp", "lan", "intranet", "localdomain", "home.arpa")


@dataclass(frozen=True)
class ChecksConfig:
    """Effective settings. `load_config` builds one from [checks], extending the defaults."""

    disabled: frozenset[str] = frozenset()
    severities: tuple[tuple[str, Severity], ...] = ()  # re-graded rules: (rule id, severity)
    acronyms: frozenset[str] = DEFAULT_ACRONYMS  # casefolded
    vendors: tuple[str, ...] = DEFAULT_VENDORS
    glossary: tuple[tuple[str, str], ...] = DEFAULT_GLOSSARY
    internal_domains: tuple[str, ...] = ()  # e.g. "corp.example.com": it and its sub-domains
    burst_limit: int = 5  # at most this many public posts …
    burst_window_minutes: int = 60  # … in this window
    repetition_window_minutes: int = 60  # compare with posts published this recently
    repetition_similarity: float = 0.8  # 0-1: share of word pairs in common that counts as "the same"
    # Compiled patterns per language choice, built on first use; not part of equality.
    _compiled: dict[str | None, _Patterns] = field(default_factory=dict, init=False, repr=False, compare=False)

    def severity_of(self, rule: str) -> Severity:
        for rule_id, severity in self.severities:
            if rule_id == rule:
                return severity
        return RULES[rule].severity

    def enabled(self, rule: str) -> bool:
        return rule not in self.disabled


_CONFIG_KEYS = (
    "disable", "severity", "acronyms", "vendors", "glossary", "internal_domains", "burst_limit",
    "burst_window_minutes", "repetition_window_minutes", "repetition_similarity",
)  # fmt: skip
_DOMAIN = re.compile(r"^(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)*[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$")


def load_config(raw: Mapping[str, Any]) -> tuple[ChecksConfig, list[str]]:
    """Build a config from the [checks] table. Lists and the glossary extend the defaults.
    Never raises: each bad value is reported as "checks.<key>: …" and its default kept."""
    if not isinstance(raw, Mapping):
        return DEFAULT_CONFIG, [f"checks: expected a table of settings, got {_type_name(raw)}"]
    problems: list[str] = []
    values: dict[str, Any] = {}
    for key in sorted(set(map(str, raw)) - set(_CONFIG_KEYS)):
        problems.append(
            f"checks.{key}: unknown key{_did_you_mean(key, _CONFIG_KEYS)}; expected one of {', '.join(_CONFIG_KEYS)}"
        )

    if "disable" in raw:
        names = _string_list(raw["disable"], "disable", problems)
        values["disabled"] = frozenset(n for n in names if _known_rule(n, f"checks.disable: {n!r}", problems))

    if "severity" in raw:
        table = raw["severity"]
        if not isinstance(table, Mapping):
            problems.append(
                f'checks.severity: expected a table like {{ shouting = "blocking" }}, got {_type_name(table)}'
            )
        else:
            regraded = []
            for rule, level in table.items():
                if not _known_rule(str(rule), f"checks.severity.{rule}", problems):
                    continue
                if level not in {s.value for s in Severity}:
                    problems.append(f'checks.severity.{rule}: expected "blocking" or "warning", got {level!r}')
                    continue
                regraded.append((str(rule), Severity(level)))
            values["severities"] = tuple(regraded)

    if "acronyms" in raw:
        words = _string_list(raw["acronyms"], "acronyms", problems)
        values["acronyms"] = DEFAULT_ACRONYMS | {w.strip().casefold() for w in words if w.strip()}

    if "vendors" in raw:
        names = []
        for name in _string_list(raw["vendors"], "vendors", problems):
            if _HEAD.match(name.strip()) and "*" not in name:
                names.append(name.strip())
            else:
                problems.append(f"checks.vendors: {name!r} must start with a letter or digit and have no *")
        values["vendors"] = DEFAULT_VENDORS + tuple(n for n in names if n not in DEFAULT_VENDORS)

    if "glossary" in raw:
        table = raw["glossary"]
        if not isinstance(table, Mapping):
            problems.append(
                f'checks.glossary: expected a table like {{ ciabatta = "power distribution unit" }}, '
                f"got {_type_name(table)}"
            )
        else:
            extra = {}
            for term, plain in table.items():
                if not _HEAD.match(str(term).strip()):
                    problems.append(f"checks.glossary.{term}: the term must start with a letter or digit")
                    continue
                if not isinstance(plain, str) or not plain.strip():
                    problems.append(f"checks.glossary.{term}: expected a non-empty replacement text, got {plain!r}")
                    continue
                extra[str(term).strip().casefold()] = plain.strip()
            kept = tuple((term, plain) for term, plain in DEFAULT_GLOSSARY if term not in extra)
            values["glossary"] = kept + tuple(extra.items())

    if "internal_domains" in raw:
        domains = []
        for name in _string_list(raw["internal_domains"], "internal_domains", problems):
            domain = name.strip().casefold().removeprefix("*.").strip(".")
            if _DOMAIN.match(domain):
                domains.append(domain)
            else:
                problems.append(
                    f"checks.internal_domains: {name!r} is not a domain name; "
                    'expected something like "corp.example.com"'
                )
        values["internal_domains"] = tuple(domains)

    for key in ("burst_limit", "burst_window_minutes", "repetition_window_minutes"):
        if key in raw:
            number = raw[key]
            if isinstance(number, bool) or not isinstance(number, int) or number < 1:
                problems.append(f"checks.{key}: expected a whole number of at least 1, got {number!r}")
            else:
                values[key] = number

    if "repetition_similarity" in raw:
        number = raw["repetition_similarity"]
        if isinstance(number, bool) or not isinstance(number, int | float) or not 0 < number <= 1:
            problems.append(
                "checks.repetition_similarity: expected a number above 0 and at most 1 "
                f"(0.8 = 80% of word pairs in common), got {number!r}"
            )
        else:
            values["repetition_similarity"] = float(number)

    return ChecksConfig(**values), problems


def _type_name(value: Any) -> str:
    names = {str: "a string", int: "a number", float: "a number", bool: "true/false", list: "a list"}
    return names.get(type(value), type(value).__name__)


def _string_list(value: Any, key: str, problems: list[str]) -> list[str]:
    if not isinstance(value, list | tuple) or not all(isinstance(item, str) for item in value):
        problems.append(f'checks.{key}: expected a list of strings like ["a", "b"], got {value!r}')
        return []
    return list(value)


def _known_rule(name: str, where: str, problems: list[str]) -> bool:
    if name in RULES:
        return True
    problems.append(f"{where}: unknown rule{_did_you_mean(name, RULES)}; expected one of {', '.join(RULES)}")
    return False


def _did_you_mean(name: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


# ---------------------------------------------------------------------------------------------
# Compiling word lists into a phrase index (once per config and language choice)
# ---------------------------------------------------------------------------------------------

_WORD = re.compile(r"\w+")


def _fold(text: str) -> str:
    """Lower case with the same length, so offsets stay valid (İ, the one exception, is kept)."""
    low = text.lower()
    return low if len(low) == len(text) else "".join(c if len(c.lower()) != 1 else c.lower() for c in text)


def _phrase(text: str) -> str:
    """One word-list phrase as a regular expression on lower-case text (syntax: module docstring)."""
    out = []
    for char in unicodedata.normalize("NFC", text.strip()).lower():
        if char == "*":
            out.append(r"\w*")
        elif char.isspace():
            if out[-1:] != [r"\s+"]:
                out.append(r"\s+")
        elif char in "'’":
            out.append("['’]")
        elif char == "è":
            out.append("(?:è|é|e['’])")
        else:
            out.append(re.escape(char))
    return "".join(out)


def _alternation(phrases: Iterable[str]) -> str:
    # Longest first, so "non è colpa nostra" wins over "colpa nostra".
    unique = sorted({p for p in phrases if p.strip()}, key=len, reverse=True)
    return "|".join(_phrase(p) for p in unique) or r"(?!)"


def _first_words(phrase: str) -> set[str]:
    """Index keys of a phrase: its first run of letters and digits (as the text is split),
    lower case, with è also as é and e; a * right after it makes it a prefix key ("rott*")."""
    head = _HEAD.match(unicodedata.normalize("NFC", phrase.strip()).lower())
    if not head:
        return set()
    return {head.group(), head.group().replace("è", "é"), head.group().replace("è", "e")}


_HEAD = re.compile(r"\w+\*?")


@dataclass(frozen=True)
class _Entry:
    category: str  # what a match means: "sarcasm", "cause", "vendor", …
    pattern: re.Pattern[str]  # tried with .match() where the key word starts
    cased: bool = False  # match on the original text (vendor names), not the lower-case one


class _PhraseIndex:
    """Phrases by first word. `scan` walks the words of a text once and tries only the phrases
    whose first word is there."""

    def __init__(self) -> None:
        self._phrases: dict[tuple[str, str, bool], list[str]] = defaultdict(list)  # (key, category, cased)
        self.exact: dict[str, tuple[_Entry, ...]] = {}
        # Prefix keys ("rott*") grouped by their first two letters, so a word costs one lookup;
        # one-letter prefixes (only from a configured glossary) are tried on every word.
        self.by_head: dict[str, tuple[tuple[str, tuple[_Entry, ...]], ...]] = {}
        self.short: tuple[tuple[str, tuple[_Entry, ...]], ...] = ()

    def add(self, category: str, phrases: Iterable[str]) -> None:
        for phrase in phrases:
            for key in _first_words(phrase):
                self._phrases[key, category, False].append(_phrase(phrase))

    def add_regex(self, category: str, keys: Iterable[str], regex: str, *, cased: bool = False) -> None:
        for key in keys:
            self._phrases[key.lower(), category, cased].append(f"(?:{regex})")

    def build(self) -> _PhraseIndex:
        grouped: dict[str, list[_Entry]] = defaultdict(list)
        for (key, category, cased), regexes in self._phrases.items():
            ordered = sorted(set(regexes), key=len, reverse=True)
            grouped[key].append(_Entry(category, re.compile(rf"(?:{'|'.join(ordered)})(?!\w)"), cased))
        self.exact = {key: tuple(entries) for key, entries in grouped.items() if not key.endswith("*")}
        heads: dict[str, list[tuple[str, tuple[_Entry, ...]]]] = defaultdict(list)
        for key, entries in grouped.items():
            if key.endswith("*"):
                heads[key[:2] if len(key) > 2 else ""].append((key[:-1], tuple(entries)))
        self.short = tuple(heads.pop("", ()))
        self.by_head = {head: tuple(group) for head, group in heads.items()}
        return self

    def scan(self, words: Sequence[re.Match[str]], low: str, cased: str) -> dict[str, list[tuple[int, int]]]:
        found: dict[str, list[tuple[int, int]]] = defaultdict(list)
        for word in words:
            token = word.group()
            entries = self.exact.get(token, ())
            for prefix, group in (*self.by_head.get(token[:2], ()), *self.short):
                if token.startswith(prefix):
                    entries += group
            for entry in entries:
                match = entry.pattern.match(cased if entry.cased else low, word.start())
                if match:
                    found[entry.category].append(match.span())
        return found


@dataclass(frozen=True)
class _Patterns:
    index: _PhraseIndex
    shouted_words: frozenset[str]
    greeting_everyone: frozenset[str]
    mention_pointer: re.Pattern[str]
    helpful_question: re.Pattern[str]
    not_yet: re.Pattern[str]
    glossary: tuple[tuple[re.Pattern[str], str], ...]
    internal_suffix: re.Pattern[str]
    internal_domain: re.Pattern[str] | None


def _patterns(config: ChecksConfig, lang: str | None) -> _Patterns:
    key = lang if lang in LEXICONS else None
    cached = config._compiled.get(key)
    if cached is None:
        lexicons = (LEXICONS[key],) if key else tuple(LEXICONS.values())
        cached = config._compiled[key] = _compile(config, lexicons)
    return cached


def _vendor_forms(name: str) -> list[str]:
    # As written or in capitals; longer names also in lower case ("cisco"), short ones not
    # ("dell'" is Italian, "tim" a first name).
    forms = {name, name.upper()} | ({name.lower()} if len(name) > 4 else set())
    return [re.escape(form).replace(r"\ ", r"\s+") for form in forms]


def _compile(config: ChecksConfig, lexicons: tuple[Lexicon, ...]) -> _Patterns:
    def gather(name: str) -> list[str]:
        return [phrase for lexicon in lexicons for phrase in getattr(lexicon, name)]

    index = _PhraseIndex()
    for category in ("address", "excuses", "fault_words", "sarcasm", "speculation", "resolved"):
        index.add(category, gather(category))
    index.add("vendor", gather("third_parties"))
    for name in config.vendors:
        index.add_regex("vendor", _first_words(name), "|".join(_vendor_forms(name)), cased=True)
    index.add("jargon", (term for term, _ in config.glossary))
    index.add_regex("sarcasm", _LAUGHTER_KEYS, _LAUGHTER)
    for lexicon in lexicons:
        for keys, regex in lexicon.next_step:
            index.add_regex("next_step", keys, regex)

    # A cause word, up to five fillers, then a scapegoat: "due to the heavy traffic".
    vendors = "|".join(form for name in config.vendors for form in _vendor_forms(name))
    scapegoat = f"(?:{_alternation(gather('scapegoats') + gather('third_parties'))}|(?-i:{vendors}))"
    filler = _alternation(gather("cause_fillers"))
    gap = r"(?:\s+|['’])"
    reporting = _alternation(gather("reporting_verbs"))
    cause = (
        rf"(?i:(?:{_alternation(gather('cause_words'))}){gap}(?:(?:{filler}){gap}){{0,5}}{scapegoat}"
        rf"(?!\w|\s+(?:{reporting})(?!\w)))"
    )
    # Vendor names keep their case inside an otherwise case-insensitive pattern, so this one
    # runs on the original text.
    index.add_regex("cause", {k for p in gather("cause_words") for k in _first_words(p)}, cause, cased=True)

    # "hi John," — the name's capital letter is checked by the rule, on the original text.
    greeting = rf"(?:{_alternation(gather('greetings'))})[\s,]+(?P<name>[^\W\d_][\w'’-]*)(?=\s*[,!.:]|\s*$)"
    index.add_regex("greeting", {k for p in gather("greetings") for k in _first_words(p)}, greeting)

    suffixes = "|".join(re.escape(s) for s in INTERNAL_SUFFIXES)
    domains = "|".join(re.escape(d) for d in sorted(config.internal_domains, key=len, reverse=True))
    glossary = tuple((re.compile(rf"(?:{_phrase(term)})$"), plain) for term, plain in config.glossary)
    return _Patterns(
        index=index.build(),
        shouted_words=frozenset(word.casefold() for word in gather("shouted_words")),
        greeting_everyone=frozenset(word.casefold() for word in gather("greeting_everyone")),
        mention_pointer=re.compile(rf"(?<!\w)(?:{_alternation(gather('mention_pointers'))})\s+$"),
        helpful_question=re.compile(rf"(?:{_alternation(gather('helpful_questions'))})(?!\w)"),
        not_yet=re.compile(rf"(?<!\w)(?:{_alternation(gather('not_yet'))})(?:\s+\w+){{0,2}}\s+$"),
        glossary=glossary,
        # Found by their suffix (starting with a literal, so `re` can skip ahead); the rule walks
        # left to the start of the host name.
        internal_suffix=re.compile(rf"\.(?:{suffixes})(?![\w-]|\.[a-z0-9])"),
        internal_domain=re.compile(rf"(?:{domains})(?![\w-]|\.[a-z0-9])") if domains else None,
    )


# ---------------------------------------------------------------------------------------------
# Secrets: found first, on the raw text, then blanked out for every other rule
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _SecretKind:
    name: str
    pattern: re.Pattern[str]  # group "keep" is the harmless prefix shown in the excerpt
    not_after: str = ""  # characters that must not come right before the match
    hint: tuple[str, ...] = ()  # lower-case strings one of which must occur, else skip the pattern
    accept: Callable[[re.Match[str]], bool] | None = None
    # The match starts at a literal ("://", "password") and is extended left over these
    # characters in code: a pattern starting with [a-z]* would be tried, and fail, at every
    # letter of the text, which is quadratic on a long word.
    extend_left: str = ""


def _assignment_looks_secret(match: re.Match[str]) -> bool:
    """`password = x` is always a secret; `password: reset …` or `the password is …` only when
    the value looks like one (digits or symbols), and never a placeholder like *** or <redacted>."""
    value = match.group("value").strip("\"'")
    if set(value) <= set("*x•.-_<>") or value.casefold() in {"<redacted>", "[redacted]", "redacted", "changeme"}:
        return False
    if "=" in match.group("sep"):
        return True
    return len(value) >= 6 and bool(re.search(r"[\d!@#$%^&*+/=_-]", value))


_WORDISH = r"\w-"
# Each kind starts with a literal where it can, and names hints (lower case) that must occur in
# the text at all: most drafts contain none, and a substring test costs next to nothing.
_SECRETS: tuple[_SecretKind, ...] = (
    _SecretKind("private key", re.compile(
        r"(?P<keep>-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----)[\s\S]*?"
        r"(?:-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----|\Z)"), hint=("-----begin",)),
    _SecretKind("Slack token", re.compile(r"(?P<keep>xox[abposre](?:\.xox[bp])?-|xapp-)[A-Za-z0-9-]{10,}"),
                _WORDISH, hint=("xox", "xapp-")),
    _SecretKind("Slack webhook URL", re.compile(r"(?P<keep>https://hooks\.slack\.com/(?:services|workflows)/)\S{10,}"),
                hint=("hooks.slack.com",)),
    _SecretKind("AWS access key", re.compile(
        r"(?P<keep>AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AIPA|ANPA|ANVA|AROA|APKA|ASCA)[A-Z0-9]{16}(?![A-Z0-9])"), "A-Z0-9",
        hint=("akia", "asia", "abia", "acca", "agpa", "aida", "aipa", "anpa", "anva", "aroa", "apka", "asca")),
    _SecretKind("GitHub token", re.compile(r"(?P<keep>gh[pousr]_|github_pat_)[A-Za-z0-9_]{30,}"), _WORDISH,
                hint=("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_")),
    _SecretKind("Stripe key", re.compile(r"(?P<keep>[sr]k_(?:live|test)_)[A-Za-z0-9]{16,}"), _WORDISH,
                hint=("k_live_", "k_test_")),
    _SecretKind("Google API key", re.compile(r"(?P<keep>AIza)[0-9A-Za-z_-]{35}"), _WORDISH, hint=("aiza",)),
    _SecretKind("webhook signing secret", re.compile(r"(?P<keep>whsec_)[A-Za-z0-9+/=]{16,}"), _WORDISH,
                hint=("whsec_",)),
    _SecretKind("JSON Web Token", re.compile(
        r"(?P<keep>eyJ)[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}"), _WORDISH, hint=("eyj",)),
    _SecretKind("bearer token", re.compile(r"(?P<keep>[Bb][Ee][Aa][Rr][Ee][Rr]\s+)[A-Za-z0-9._~+/-]{16,}=*"), _WORDISH,
                hint=("bearer",)),
    _SecretKind("basic auth credentials", re.compile(
        r"(?P<keep>[Aa]uthorization:\s*[Bb]asic\s+)[A-Za-z0-9+/]{8,}=*"), _WORDISH, hint=("basic",)),
    _SecretKind("connection string with a password", re.compile(r"(?P<keep>://)[^\s:/@]+:[^\s@/]+@\S+"),
                r"\w.+-", hint=("://",), accept=lambda m: m.start() > 0, extend_left="a-zA-Z0-9+.-"),
    _SecretKind(
        "password or key",
        re.compile(
            r"(?i)(?P<keep>(?:password|passwd|passwort|pwd|secret|token|api[_-]?key|apikey|"
            r"access[_-]?key|auth[_-]?key)[\w.-]{0,40}(?P<sep>\s*(?::=|=>|=|:)\s*|(?:\s+[\w-]+){0,4}?\s+(?:is|è|e['’])\s+))"
            r"(?P<value>[\"']?[^\s\"',;]{4,}[\"']?)"
        ),
        _WORDISH,
        hint=("pass", "pwd", "secret", "token", "key"),
        accept=_assignment_looks_secret,
        extend_left=r"\w.-",
    ),
)  # fmt: skip


@dataclass(frozen=True)
class _Secret:
    kind: str
    start: int
    end: int
    redacted: str


_ANY_SECRET_HINT = re.compile("|".join(re.escape(h) for kind in _SECRETS for h in kind.hint))


def _find_secrets(text: str, low: str) -> list[_Secret]:
    found: list[_Secret] = []
    if not _ANY_SECRET_HINT.search(low):
        return found  # nearly every draft: one search and done
    for kind in _SECRETS:
        if kind.hint and not any(h in low for h in kind.hint):
            continue
        for match in kind.pattern.finditer(text):
            start, end = match.span()
            limit = max(0, start - 40)  # bounded: no name or scheme is longer
            while kind.extend_left and start > limit and re.match(f"[{kind.extend_left}]", text[start - 1]):
                start -= 1  # "DB_" of DB_PASSWORD, "postgres" of postgres://
            if kind.not_after and start and re.match(f"[{kind.not_after}]", text[start - 1]):
                continue
            if kind.accept and not kind.accept(match):
                continue
            if any(s.start < end and start < s.end for s in found):
                continue  # already covered by a more specific kind (a token inside "token=xoxb-…")
            keep = " ".join(text[start : match.end("keep")].split())
            found.append(_Secret(kind.name, start, end, f"{keep}…(redacted)"))
    return sorted(found, key=lambda s: s.start)


# ---------------------------------------------------------------------------------------------
# The context every rule receives
# ---------------------------------------------------------------------------------------------

_URL = re.compile(r"(?i)\b(?:https?|ftp)://\S+|\bwww\.\S+")
_EMAIL = re.compile(r"(?<![@\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_CODE = re.compile(r"`[^`\n]*`")
# A sentence: up to . ! ? or a line end; a dot followed by a letter or digit (db.internal, 1.5,
# e.g.) does not end it, and the terminator takes the whole run ("…???", "?!").
_SENTENCE = re.compile(r"[^.!?\n]+(?:\.(?=\w)[^.!?\n]*)*[.!?…]*")


@dataclass
class _Hit:
    start: int
    end: int
    message: str
    suggestion: str | None = None
    excerpt: str | None = None  # set by the secrets rule; others are cut from the text


@dataclass
class _Context:
    text: str  # NFC text (what the excerpts are cut from)
    scan: str  # secrets blanked: for rules that need URLs and host names
    secrets: list[_Secret]
    patterns: _Patterns
    config: ChecksConfig
    outside_slack: bool
    lang: str | None
    recent: Sequence[RecentPost]
    now: datetime | None

    @cached_property
    def prose(self) -> str:
        """`scan` with URLs, e-mail addresses and `code` blanked: only the words people read."""
        out = self.scan
        for pattern, hint in ((_URL, ("://", "www.")), (_EMAIL, ("@",)), (_CODE, ("`",))):
            if any(h in out for h in hint):
                out = pattern.sub(lambda m: " " * len(m.group()), out)
        return out

    @cached_property
    def low(self) -> str:
        return _fold(self.prose)

    @cached_property
    def words(self) -> list[re.Match[str]]:
        return list(_WORD.finditer(self.low))

    @cached_property
    def phrases(self) -> dict[str, list[tuple[int, int]]]:
        """Every word-list phrase found, by category, in one pass over the words."""
        return self.patterns.index.scan(self.words, self.low, self.prose)

    @cached_property
    def sentences(self) -> list[tuple[int, int]]:
        spans = []
        for match in _SENTENCE.finditer(self.prose):
            start, end = match.span()
            while start < end and self.prose[start].isspace():
                start += 1
            if start < end:
                spans.append((start, end))
        return spans

    @cached_property
    def language(self) -> str:
        """The draft's language, for example sentences: the given one, else a word-count guess."""
        if self.lang in LEXICONS:
            return self.lang
        words = [w.group() for w in self.words]
        scores = {code: sum(w in lex.common_words for w in words) for code, lex in LEXICONS.items()}
        return max(scores, key=lambda code: (scores[code], code == "en"))

    def example(self, rule: str) -> str | None:
        return LEXICONS[self.language].examples.get(rule)

    def found(self, category: str) -> list[tuple[int, int]]:
        return self.phrases.get(category, [])


# ---------------------------------------------------------------------------------------------
# The rules: one function each, (context) -> hits
# ---------------------------------------------------------------------------------------------


def check_secrets(ctx: _Context) -> Iterable[_Hit]:
    for secret in ctx.secrets:
        yield _Hit(
            secret.start,
            secret.end,
            f"Looks like a {secret.kind}; it must never be published",
            "Remove it, and rotate it now: it has already been pasted into Slack.",
            excerpt=secret.redacted,
        )


_PRIVATE_NETWORKS = tuple(
    ipaddress.ip_network(n)
    for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "127.0.0.0/8", "169.254.0.0/16",
              "::1/128", "fe80::/10", "fc00::/7")
)  # fmt: skip
_IPV4 = re.compile(r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}(?:/\d{1,2})?")
_IPV6_HINT = re.compile(r":[0-9A-Fa-f]{0,4}:")  # two colons close together: worth a closer look
_IPV6 = re.compile(r"(?<![\w:.])(?:[0-9a-f]{0,4}:){2,7}[0-9a-f]{0,4}(?:%[\w.]+)?(?:/\d{1,3})?(?![\w:])", re.I)
_SLACK_MARKUP = re.compile(
    r"<(?:@[UW][A-Z0-9]+|#C[A-Z0-9]+|![a-z]+(?:\^[^|>]*)?|(?:https?|mailto):[^|>\s]+)(?:\|[^>]*)?>"
    r"|@(?:here|channel|everyone)(?!\w)"
)
_HOST_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789.-")


def check_internal(ctx: _Context) -> Iterable[_Hit]:
    scan = ctx.scan
    candidates = []
    if scan.count(".") >= 3:
        candidates += [m for m in _IPV4.finditer(scan) if not _touches(scan, m, r"[\w.]", r"\.?\d")]
    if scan.count(":") >= 2 and _IPV6_HINT.search(scan):
        candidates += _IPV6.finditer(scan)
    for match in candidates:
        address = match.group().split("/")[0].split("%")[0]
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            continue
        if any(ip in net for net in _PRIVATE_NETWORKS if net.version == ip.version):
            yield _Hit(
                *match.span(),
                f"Private IP address {match.group()} means nothing outside and maps your network",
                'Remove it, or name the component in customer terms ("one of our database servers").',
            )
    for start, end in _internal_hosts(ctx):
        yield _Hit(
            start,
            end,
            f"Internal host name {scan[start:end]} must not be published",
            'Describe the service the customer knows, e.g. "the control panel" or "a database server".',
        )
    if ctx.outside_slack and ("<" in scan or "@" in scan):
        for match in _SLACK_MARKUP.finditer(scan):
            if match.group()[0] == "@" and _touches(scan, match, r"[\w@]", ""):
                continue
            yield _Hit(
                *match.span(),
                "Slack-only markup shows up as raw text outside Slack",
                "Write the name or link in plain words; drop @here and @channel.",
            )


def _touches(text: str, match: re.Match[str], before: str, after: str) -> bool:
    """Whether the match is glued to its neighbours (so it is part of a longer token)."""
    start, end = match.span()
    return bool((start and re.match(before, text[start - 1])) or (after and re.match(after, text[end:])))


def _internal_hosts(ctx: _Context) -> Iterable[tuple[int, int]]:
    low = _fold(ctx.scan)
    matches = list(ctx.patterns.internal_suffix.finditer(low))
    if ctx.patterns.internal_domain:
        matches += ctx.patterns.internal_domain.finditer(low)
    if "localhost" in low:
        matches += re.finditer(r"localhost(?![\w-]|\.[a-z0-9])", low)
    for match in matches:
        start, end = match.span()
        if not match.group().startswith(".") and low[start - 1 : start] != ".":
            if start and low[start - 1] in _HOST_CHARS:
                continue  # "mylocalhost", "notcorp.example.com"
            yield start, end
            continue
        while start and low[start - 1] in _HOST_CHARS:  # walk left to the start of the host name
            start -= 1
        while start < match.start() and low[start] in ".-":
            start += 1
        if start < match.start() or not match.group().startswith("."):  # ".local" alone names the suffix
            yield start, end


# Whole words of letters that are not a-z (DON'T and L'ABBIAMO included): capitals, plus a few
# accented lower-case words and single letters that the rule then drops.
_CAPITALS = re.compile(r"(?<![\w'’])[^\W\d_a-z]+(?:['’][^\W\d_a-z]+)*(?![\w'’])")


def check_shouting(ctx: _Context) -> Iterable[_Hit]:
    """Runs of capitalised words, minus accepted acronyms. A lone unknown capitalised word is
    shouting when it is long (BROKEN) or an everyday word (NOT, MAI); a short unknown one alone
    is more likely an acronym we have not heard of (NFS)."""
    prose = ctx.prose
    runs: list[list[re.Match[str]]] = [[]]
    for word in _CAPITALS.finditer(prose):
        if not word.group().isupper() or sum(c.isalpha() for c in word.group()) < 2:
            continue
        if runs[-1] and re.search(r"[^\W_]", prose[runs[-1][-1].end() : word.start()]):
            runs.append([])  # a lower-case word or a number in between: not one phrase
        runs[-1].append(word)
    for run in filter(None, runs):
        words = [m.group() for m in run]
        unknown = [w for w in words if w.casefold() not in ctx.config.acronyms]
        loud = len(unknown) >= 2 or any(len(w) >= 5 or w.casefold() in ctx.patterns.shouted_words for w in unknown)
        start, end = run[0].start(), run[-1].end()
        if not loud or _is_label(prose, start, end):
            continue
        calm = " ".join(w if w.casefold() in ctx.config.acronyms else w.lower() for w in words)
        yield _Hit(start, end, "Capitals read as shouting", f'Write it in normal case: "{calm}".')


def _is_label(text: str, start: int, end: int) -> bool:
    # "UPDATE: …", "[RESOLVED] …", "RISOLTO - …" at the start of a line is a status label.
    before = text[text.rfind("\n", 0, start) + 1 : start].strip()
    if before == "[":
        return text[end : end + 1] == "]"
    return before in {"", "**", "*"} and bool(re.match(r"\s*(?:\*\*)?\s*(?::|-|–|—)", text[end:]))


_PUNCTUATION_RUN = re.compile(r"[?!？！‼⁇⁈⁉]+")


def check_punctuation(ctx: _Context) -> Iterable[_Hit]:
    for match in _PUNCTUATION_RUN.finditer(ctx.prose):
        if len(match.group()) >= 2 or match.group() in "‼⁇⁈⁉":
            yield _Hit(
                *match.span(),
                f"{match.group()} reads as exasperated",
                "End the sentence with a single full stop and state the fact.",
            )


def check_question(ctx: _Context) -> Iterable[_Hit]:
    if "?" not in ctx.prose and "？" not in ctx.prose:
        return
    for start, end in ctx.sentences:
        if not {"?", "？"} & set(ctx.prose[max(start, end - 4) : end]):
            continue
        if ctx.patterns.helpful_question.match(ctx.low, start):
            continue  # "Still seeing errors? Contact support…" points to help
        yield _Hit(start, end, "A public update should answer, not ask", ctx.example("question"))


_MENTION = re.compile(r"@[A-Za-z0-9_](?:[\w.-]*\w)?(?:@[\w-]+(?:\.[\w-]+)+)?")


def check_direct_address(ctx: _Context) -> Iterable[_Hit]:
    prose, low = ctx.prose, ctx.low
    for match in _MENTION.finditer(prose) if "@" in prose else ():
        if _touches(prose, match, r"[\w@.<:/]", "") or match.group().lower() in {"@here", "@channel", "@everyone"}:
            continue  # an e-mail address, Slack markup (the internal rule's business)
        if ctx.patterns.mention_pointer.search(low, max(0, match.start() - 20), match.start()):
            continue  # "follow @acmestatus": pointing at an account, not talking to it
        yield _Hit(
            *match.span(),
            f"{match.group()} talks to one person in a broadcast",
            "Answer individuals in a reply or a direct message; write the update for everyone.",
        )
    for start, end in ctx.found("address"):
        yield _Hit(
            start,
            end,
            f'"{prose[start:end]}" addresses one person in a broadcast',
            'Write to all affected customers, e.g. "Customers using …" / "I clienti che …".',
        )
    for start, end in ctx.found("greeting"):
        name = re.search(r"[^\W\d_][\w'’-]*$", prose[start:end])
        word = name.group() if name else ""
        if word[:1].isupper() and not word.isupper() and word.casefold() not in ctx.patterns.greeting_everyone:
            yield _Hit(
                start,
                end,
                f'"{prose[start:end]}" replies to one person in a broadcast',
                "Answer individuals in a reply or a direct message; write the update for everyone.",
            )


def check_blame(ctx: _Context) -> Iterable[_Hit]:
    prose, suggestion = ctx.prose, ctx.example("blame")
    for start, end in ctx.found("excuses"):
        yield _Hit(start, end, f'"{prose[start:end]}" shifts the blame; customers hold you responsible', suggestion)
    for start, end in ctx.found("cause"):
        yield _Hit(start, end, "Names someone else (traffic, weather, a supplier, customers) as the cause", suggestion)
    # A vendor or outsider in the same sentence as a fault word: "three Cisco switches, all broken".
    vendors, faults = ctx.found("vendor"), ctx.found("fault_words")
    for s_start, s_end in ctx.sentences if vendors and faults else ():
        vendor = next((v for v in vendors if s_start <= v[0] < s_end), None)
        fault = next((f for f in faults if s_start <= f[0] < s_end), None)
        if vendor and fault:
            yield _Hit(
                min(vendor[0], fault[0]),
                max(vendor[1], fault[1]),
                f"Blames {prose[vendor[0] : vendor[1]]} for the failure; to customers, the service and the "
                "failure are yours",
                suggestion,
            )


def check_sarcasm(ctx: _Context) -> Iterable[_Hit]:
    spans = list(ctx.found("sarcasm"))
    if not ctx.prose.isascii():
        spans += [m.span() for m in _SARCASM_EMOJI.finditer(ctx.prose)]
    for start, end in spans:
        yield _Hit(
            start,
            end,
            f'"{ctx.prose[start:end]}" reads as sarcastic or dismissive',
            "Drop it; state the facts plainly and calmly.",
        )


def check_speculation(ctx: _Context) -> Iterable[_Hit]:
    for start, end in ctx.found("speculation"):
        yield _Hit(start, end, f'"{ctx.prose[start:end]}" guesses at the cause in public', ctx.example("speculation"))


def check_jargon(ctx: _Context) -> Iterable[_Hit]:
    for start, end in ctx.found("jargon"):
        found = ctx.low[start:end]
        plain = next((p for term, p in ctx.patterns.glossary if term.match(found)), None)
        yield _Hit(
            start,
            end,
            f'"{ctx.prose[start:end]}" is internal or colloquial jargon readers may not know',
            f'Write "{plain}" instead.' if plain else None,
        )


# A clock time: 14:30, 14.30, 14h30, 2pm, 2:30 p.m. Found from a digit (so `re` can skip ahead)
# and checked around: not 2.30%, not 1.25.5, not 114:30, not 25:00.
_CLOCK = re.compile(r"(?P<hour>\d{1,2})[:.h][0-5]\d")
_AM_PM = re.compile(r"(?P<hour>\d{1,2})(?:[:.][0-5]\d)?\s?(?:am|pm|a\.m\.|p\.m\.)(?!\w)")


def _has_clock_time(low: str) -> bool:
    for match in _CLOCK.finditer(low):
        start, end = match.span()
        hour = int(match.group("hour"))
        before, after = low[start - 1 : start], low[end : end + 2]
        if hour <= 23 and not re.match(r"[\d.:,]", before) and not re.match(r"\d|\s?%|[.,]\d", after):
            return True
    for match in _AM_PM.finditer(low):
        hour = int(match.group("hour"))
        if 1 <= hour <= 12 and not low[match.start() - 1 : match.start()].isdigit():
            return True
    return False


def check_no_next_step(ctx: _Context) -> Iterable[_Hit]:
    low = ctx.low
    if ctx.found("next_step") or _has_clock_time(low):
        return
    for start, end in ctx.found("resolved"):
        if ctx.patterns.not_yet.search(low, max(0, start - 30), start) or low[end : end + 3].lstrip().startswith("?"):
            continue  # "partially restored", "non ancora risolto", "RISOLTO??"
        return  # the incident is over: the resolution is the news
    yield _Hit(0, 0, "Gives no time for the next update or for the fix", ctx.example("no_next_step"))


@lru_cache(maxsize=512)
def _shingles(text: str) -> frozenset[tuple[str, ...]]:
    # Word pairs, numbers folded: a copy with only the time changed is still a copy.
    tokens = re.findall(r"[^\W\d]+|\d+", unicodedata.normalize("NFC", text).lower())
    tokens = ["#" if t.isdigit() else t for t in tokens]
    return frozenset(pairwise(tokens) if len(tokens) > 2 else ((t,) for t in tokens))


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def check_repetition(ctx: _Context) -> Iterable[_Hit]:
    if ctx.now is None:
        return
    now = _utc(ctx.now)
    window = timedelta(minutes=ctx.config.repetition_window_minutes)
    mine = _shingles(ctx.text)
    best: tuple[float, RecentPost] | None = None
    for post in ctx.recent:
        if not now - window <= _utc(post.at) <= now:
            continue
        theirs = _shingles(post.text)
        similarity = len(mine & theirs) / len(mine | theirs) if mine | theirs else 1.0
        if similarity >= ctx.config.repetition_similarity and (best is None or similarity > best[0]):
            best = (similarity, post)
    if best:
        minutes = int((now - _utc(best[1].at)).total_seconds() // 60)
        yield _Hit(
            0,
            0,
            f"Nearly identical to a post published {minutes} min ago",
            "Say what has changed since then, or do not post.",
        )


def check_burst(ctx: _Context) -> Iterable[_Hit]:
    if ctx.now is None:
        return
    now = _utc(ctx.now)
    window = ctx.config.burst_window_minutes
    count = sum(1 for post in ctx.recent if now - timedelta(minutes=window) < _utc(post.at) <= now)
    if count + 1 > ctx.config.burst_limit:
        yield _Hit(
            0,
            0,
            f"This would be post {count + 1} in {window} min (limit {ctx.config.burst_limit})",
            "Fold the news into fewer updates and give a time for the next one.",
        )


@dataclass(frozen=True)
class Rule:
    id: str
    severity: Severity  # default; [checks.severity] can re-grade it
    check: Callable[[_Context], Iterable[_Hit]]
    about: str  # one line for docs and help


RULES: dict[str, Rule] = {
    rule.id: rule
    for rule in (
        Rule("secrets", Severity.BLOCKING, check_secrets, "tokens, keys, passwords, credentials in URLs"),
        Rule("internal", Severity.BLOCKING, check_internal, "private IPs, internal host names, Slack-only markup"),
        Rule("shouting", Severity.WARNING, check_shouting, "words in capitals beyond accepted acronyms"),
        Rule("punctuation", Severity.WARNING, check_punctuation, "?? !! ?! and longer runs"),
        Rule("question", Severity.WARNING, check_question, "questions to the audience"),
        Rule("direct_address", Severity.WARNING, check_direct_address, "replies to or addresses one person"),
        Rule("blame", Severity.WARNING, check_blame, "blaming vendors, third parties, customers, traffic, weather"),
        Rule("sarcasm", Severity.WARNING, check_sarcasm, "sarcasm and dismissiveness markers"),
        Rule("speculation", Severity.WARNING, check_speculation, "guessing at causes"),
        Rule("jargon", Severity.WARNING, check_jargon, "internal or colloquial terms from the glossary"),
        Rule("no_next_step", Severity.WARNING, check_no_next_step, "no time for the next update or the fix"),
        Rule("repetition", Severity.WARNING, check_repetition, "nearly identical to a recent post"),
        Rule("burst", Severity.WARNING, check_burst, "too many public posts in a window"),
    )
}

DEFAULT_CONFIG = ChecksConfig()

# ---------------------------------------------------------------------------------------------
# Running the rules
# ---------------------------------------------------------------------------------------------

_EXCERPT_MAX = 80


def run_checks(
    text: str,
    *,
    config: ChecksConfig = DEFAULT_CONFIG,
    outside_slack: bool = True,
    lang: str | None = None,
    recent: Sequence[RecentPost] = (),
    now: datetime | None = None,
) -> list[Finding]:
    """Every enabled rule on `text`; blocking findings first, then by position.

    `lang` None (or a language without a lexicon) uses every lexicon. Repetition and burst run
    only when `now` is given: the clock is the caller's, never read here."""
    if not text.strip():
        return []
    normal, to_original = _nfc_with_offsets(text)
    secrets = _find_secrets(normal, _fold(normal))
    scan = normal
    for secret in secrets:
        scan = scan[: secret.start] + " " * (secret.end - secret.start) + scan[secret.end :]
    ctx = _Context(normal, scan, secrets, _patterns(config, lang), config, outside_slack, lang, recent, now)

    findings: list[Finding] = []
    for rule in RULES.values():
        if not config.enabled(rule.id):
            continue
        severity = config.severity_of(rule.id)
        kept: list[_Hit] = []
        for hit in sorted(rule.check(ctx), key=lambda h: (h.start, -h.end)):
            if any(k.start <= hit.start and hit.end <= k.end and k.end > k.start for k in kept):
                continue  # inside a span this rule already reported ("non è colpa nostra" ⊃ "colpa")
            kept.append(hit)
            start, end = to_original(hit.start, hit.end)
            excerpt = hit.excerpt if hit.excerpt is not None else _excerpt(ctx, hit.start, hit.end)
            findings.append(Finding(rule.id, severity, hit.message, start, end, excerpt, hit.suggestion))
    findings.sort(key=lambda f: (f.severity != Severity.BLOCKING, f.start, f.end, f.rule))
    return findings


def _excerpt(ctx: _Context, start: int, end: int) -> str:
    """The words a finding is about, on one line, with any secret inside redacted."""
    pieces, at = [], start
    for secret in ctx.secrets:
        if secret.start < end and start < secret.end:
            pieces += [ctx.text[at : max(at, secret.start)], secret.redacted]
            at = max(at, secret.end)
    pieces.append(ctx.text[at:end] if at < end else "")
    excerpt = " ".join("".join(pieces).split())
    return excerpt if len(excerpt) <= _EXCERPT_MAX else excerpt[: _EXCERPT_MAX - 1] + "…"


def _nfc_with_offsets(text: str) -> tuple[str, Callable[[int, int], tuple[int, int]]]:
    """NFC text plus a function mapping a span in it back to `text`.

    Rules match composed letters ("è"), but a draft may carry "e" + combining grave; spans must
    still point into what the author typed. Each base character with its combining marks is
    normalised on its own and remembered; if that does not reproduce whole-text NFC (some
    Hangul), the text is used as it is."""
    if unicodedata.is_normalized("NFC", text):
        return text, lambda start, end: (start, end)
    starts: list[int] = []  # for each normalised character: its cluster's start in `text`
    ends: list[int] = []  # … and end
    pieces = []
    cluster = 0
    for i in range(1, len(text) + 1):
        if i == len(text) or unicodedata.combining(text[i]) == 0:
            piece = unicodedata.normalize("NFC", text[cluster:i])
            pieces.append(piece)
            starts += [cluster] * len(piece)
            ends += [i] * len(piece)
            cluster = i
    normal = "".join(pieces)
    if normal != unicodedata.normalize("NFC", text):
        return text, lambda start, end: (start, end)

    def to_original(start: int, end: int) -> tuple[int, int]:
        if start == end:
            return (starts[start], starts[start]) if start < len(starts) else (len(text), len(text))
        return starts[start], ends[end - 1]

    return normal, to_original


def summary(findings: Iterable[Finding]) -> tuple[int, int]:
    """(blocking count, warning count)."""
    blocking = warnings = 0
    for finding in findings:
        if finding.severity == Severity.BLOCKING:
            blocking += 1
        else:
            warnings += 1
    return blocking, warnings


# ---------------------------------------------------------------------------------------------
# Command line: `python app.py checks [--lang en|it] [--json] < draft.txt`
# ---------------------------------------------------------------------------------------------

EXIT_CLEAN, EXIT_WARNINGS, EXIT_BLOCKING, EXIT_USAGE = 0, 1, 2, 64


class _UsageError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class _Parser(argparse.ArgumentParser):
    """argparse that writes to our stdout and raises instead of calling sys.exit."""

    def __init__(self, out: TextIO, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._out = out

    def _print_message(self, message: str, file: Any = None) -> None:
        if message:
            self._out.write(message)

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        raise _UsageError(status, message or "")

    def error(self, message: str) -> NoReturn:
        raise _UsageError(EXIT_USAGE, f"{self.format_usage()}{self.prog}: error: {message}\n")


def cli(argv: list[str], *, stdin: TextIO, stdout: TextIO, config: ChecksConfig = DEFAULT_CONFIG) -> int:
    """Check the draft on stdin. Exit 0 clean, 1 warnings only, 2 blocking, 64 bad arguments."""
    parser = _Parser(
        stdout,
        prog="app.py checks",
        description="Pre-flight checks on a draft read from standard input. "
        "Exit status: 0 no findings, 1 warnings only, 2 blocking findings, 64 bad arguments.",
    )
    parser.add_argument("--lang", choices=sorted(LEXICONS), help="language of the draft (default: all)")
    parser.add_argument("--json", action="store_true", help="print the findings as a JSON list")
    parser.add_argument(
        "--inside-slack", action="store_true", help="the text is only posted in Slack (Slack markup allowed)"
    )
    try:
        args = parser.parse_args(argv)
    except _UsageError as exc:
        stdout.write(str(exc))
        return EXIT_CLEAN if exc.status == 0 else EXIT_USAGE

    findings = run_checks(stdin.read(), config=config, outside_slack=not args.inside_slack, lang=args.lang)
    if args.json:
        stdout.write(json.dumps([f.as_dict() for f in findings], ensure_ascii=False, indent=2) + "\n")
    elif not findings:
        stdout.write("no findings\n")
    else:
        for f in findings:
            line = f'{f.severity} {f.rule} {f.start}-{f.end} "{f.excerpt}": {f.message}.'
            stdout.write(line + (f" Try: {f.suggestion}" if f.suggestion else "") + "\n")
    blocking, warnings = summary(findings)
    return EXIT_BLOCKING if blocking else EXIT_WARNINGS if warnings else EXIT_CLEAN
