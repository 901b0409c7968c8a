"""What each push says, in the recipient's language (ru, kk, en).

A payload is built per recipient, so an officer reading Kazakh and a feldsher
reading Russian each get their own words. The service worker shows `title`
and `body` as they are and opens `url` on a tap; `tag` makes a later push about
the same incident replace the earlier notification instead of piling up.

Every payload is also a Declarative Web Push message (`"web_push": 8030` and a
`notification` member; see declarative()), so iOS 18.4 and later show it with
no service worker running. Every push shows a notification: iOS revokes the
subscription of a site whose pushes show none (after three).
"""

import json
from datetime import UTC

from flask import current_app

from api.law import service as law
from api.orgs.models import Role

PAYLOAD_VERSION = 1
# Push services accept about 4 KB of ciphertext; keep well inside it.
MAX_PAYLOAD_BYTES = 3000

TEXT = {
    "received_title": {
        "en": "Received: case {case}",
        "ru": "Принято: дело {case}",
        "kk": "Қабылданды: іс {case}",
    },
    "article_part": {
        "en": "Article {article} part {part} ({summary})",
        "ru": "Статья {article} часть {part} ({summary})",
        "kk": "{article}-бап, {part}-бөлік ({summary})",
    },
    "post_notified": {
        "en": "police post {post} notified",
        "ru": "полицейский пост {post} оповещён",
        "kk": "{post} полиция бекетіне хабарланды",
    },
    "no_post": {
        "en": "no police post could be chosen; your station manager was told",
        "ru": "полицейский пост не определён; руководитель подстанции оповещён",
        "kk": "полиция бекеті анықталмады; кіші станция басшысына хабарланды",
    },
    "acknowledged_title": {
        "en": "Police acknowledged case {case}",
        "ru": "Полиция приняла дело {case}",
        "kk": "Полиция {case} ісін қабылдады",
    },
    "acknowledged_body": {
        "en": "{post}: {officer} has taken it.",
        "ru": "{post}: {officer} принял(а) дело.",
        "kk": "{post}: {officer} істі қабылдады.",
    },
    "erdr_title": {
        "en": "Case {case} registered in ЕРДР",
        "ru": "Дело {case} зарегистрировано в ЕРДР",
        "kk": "{case} ісі ЕРДР-де тіркелді",
    },
    "erdr_body": {
        "en": "ЕРДР number: {erdr}.",
        "ru": "Номер ЕРДР: {erdr}.",
        "kk": "ЕРДР нөмірі: {erdr}.",
    },
    "closed_title": {
        "en": "Case {case} closed by the police",
        "ru": "Дело {case} закрыто полицией",
        "kk": "{case} ісін полиция жапты",
    },
    "alert_title": {
        "en": "Ambulance crew assaulted: case {case}",
        "ru": "Нападение на бригаду скорой: дело {case}",
        "kk": "Жедел жәрдем бригадасына шабуыл: іс {case}",
    },
    "police_needed": {
        "en": "POLICE NEEDED NOW",
        "ru": "НУЖНА ПОЛИЦИЯ СЕЙЧАС",
        "kk": "ПОЛИЦИЯ ҚАЗІР ҚАЖЕТ",
    },
    "escalation_title": {
        "en": "Not acknowledged in {minutes} min: case {case}",
        "ru": "Не принято за {minutes} мин: дело {case}",
        "kk": "{minutes} минутта қабылданбады: іс {case}",
    },
    "rerouted_title": {
        "en": "Case {case} moved to another post",
        "ru": "Дело {case} передано другому посту",
        "kk": "{case} ісі басқа бекетке берілді",
    },
    "rerouted_body": {
        "en": "The crew's destination hospital is {post}; its post has been alerted.",
        "ru": "Больница назначения бригады: {post}; её пост оповещён.",
        "kk": "Бригаданың баратын ауруханасы: {post}; оның бекетіне хабарланды.",
    },
    "escalation_body": {
        "en": "Post {post} has not acknowledged it. {classification}",
        "ru": "Пост {post} не подтвердил получение. {classification}",
        "kk": "{post} бекеті қабылдағанын растамады. {classification}",
    },
    "happened_logged": {
        "en": "happened {occurred} · logged {logged}",
        "ru": "произошло {occurred} · зарегистрировано {logged}",
        "kk": "болған уақыты {occurred} · тіркелген уақыты {logged}",
    },
    "time_corrected_title": {
        "en": "Case {case}: time of the incident corrected",
        "ru": "Дело {case}: время инцидента уточнено",
        "kk": "{case} ісі: оқиға уақыты нақтыланды",
    },
    "time_pending_title": {
        "en": "Case {case}: a time correction awaits your confirmation",
        "ru": "Дело {case}: уточнение времени ждёт вашего подтверждения",
        "kk": "{case} ісі: уақытты нақтылау сіздің растауыңызды күтуде",
    },
    "time_pending_body": {
        "en": "The crew states it happened {stated}, more than {days} days before it was "
              "logged ({logged}).",
        "ru": "Бригада указывает, что это произошло {stated}, более чем за {days} дн. до "
              "регистрации ({logged}).",
        "kk": "Бригада оқиға {stated} болғанын көрсетеді: тіркелуінен ({logged}) {days} "
              "күннен астам бұрын.",
    },
    "time_confirmed_title": {
        "en": "Case {case}: time correction confirmed",
        "ru": "Дело {case}: уточнение времени подтверждено",
        "kk": "{case} ісі: уақытты нақтылау расталды",
    },
    "time_rejected_title": {
        "en": "Case {case}: time correction rejected",
        "ru": "Дело {case}: уточнение времени отклонено",
        "kk": "{case} ісі: уақытты нақтылау қабылданбады",
    },
    "time_rejected_body": {
        "en": "The incident keeps the time {occurred}. Ask your station manager.",
        "ru": "У инцидента остаётся время {occurred}. Обратитесь к руководителю подстанции.",
        "kk": "Оқиға уақыты {occurred} болып қалады. Кіші станция басшысына хабарласыңыз.",
    },
    "passkey_added_title": {
        "en": "New passkey on your Qorgau account",
        "ru": "Новый ключ доступа в вашей учётной записи Qorgau",
        "kk": "Qorgau тіркелгіңізге жаңа кіру кілті қосылды",
    },
    "passkey_added_body": {
        "en": "“{label}” was added on {when}. If this was not you, {tell}.",
        "ru": "«{label}» добавлен {when}. Если это были не вы, {tell}.",
        "kk": "«{label}» {when} қосылды. Егер бұл сіз болмасаңыз, {tell}.",
    },
    "passkey_added_body_unnamed": {
        "en": "A passkey with no name was added on {when}. If this was not you, {tell}.",
        "ru": "Ключ доступа без названия добавлен {when}. Если это были не вы, {tell}.",
        "kk": "Атаусыз кіру кілті {when} қосылды. Егер бұл сіз болмасаңыз, {tell}.",
    },
    # Crew answer to a station manager; everyone else to whoever they report to.
    "tell_station_manager": {
        "en": "tell your station manager",
        "ru": "сообщите руководителю подстанции",
        "kk": "кіші станция басшысына хабарлаңыз",
    },
    "tell_supervisor": {
        "en": "tell your supervisor",
        "ru": "сообщите своему руководителю",
        "kk": "басшыңызға хабарлаңыз",
    },
    "hazard_raised_title": {
        "en": "Address flagged: case {case}",
        "ru": "Адрес отмечен как опасный: дело {case}",
        "kk": "Мекенжай қауіпті деп белгіленді: іс {case}",
    },
    "hazard_raised_body": {
        "en": "Your station manager flagged the place of case {case} ({reason}) until {until}. "
              "Crews sent there will be warned to ask for police before entering.",
        "ru": "Руководитель подстанции отметил место по делу {case} ({reason}) до {until}. "
              "Бригады, направленные туда, увидят предупреждение вызвать полицию до входа.",
        "kk": "Кіші станция басшысы {case} ісі бойынша орынды {until} дейін белгіледі "
              "({reason}). Онда жіберілген бригадалар кірер алдында полиция шақыру туралы "
              "ескерту көреді.",
    },
    # SOS (api.sos). Nothing sent to the crew member's own phone ever says "duress".
    "sos_title": {
        "en": "SOS: crew in danger now, case {case}",
        "ru": "SOS: бригада в опасности, дело {case}",
        "kk": "SOS: бригада қауіпте, іс {case}",
    },
    "sos_body": {
        "en": "{person} ({station}) pressed SOS. Open for the live location.",
        "ru": "{person} ({station}) нажал(а) SOS. Откройте, чтобы видеть местоположение.",
        "kk": "{person} ({station}) SOS басты. Орналасқан жерін көру үшін ашыңыз.",
    },
    "sos_duress_title": {
        "en": "DURESS: SOS case {case} cancelled under threat",
        "ru": "ПОД ПРИНУЖДЕНИЕМ: SOS по делу {case} отменён под угрозой",
        "kk": "МӘЖБҮРЛЕУМЕН: {case} ісі бойынша SOS қорқытумен тоқтатылды",
    },
    "sos_duress_body": {
        "en": "The duress PIN was entered. The alarm stays open; the phone shows it as "
              "cancelled. Do not call the crew member's phone.",
        "ru": "Введён PIN принуждения. Тревога остаётся открытой; на телефоне она выглядит "
              "отменённой. Не звоните на телефон сотрудника.",
        "kk": "Мәжбүрлеу PIN-коды енгізілді. Дабыл ашық қалады; телефонда ол тоқтатылған "
              "болып көрінеді. Қызметкердің телефонына қоңырау шалмаңыз.",
    },
    "sos_stood_down_title": {
        "en": "SOS case {case} stood down",
        "ru": "SOS по делу {case} отменён",
        "kk": "{case} ісі бойынша SOS тоқтатылды",
    },
    "sos_stood_down_body": {
        "en": "The crew member ended the alarm with their PIN.",
        "ru": "Сотрудник завершил тревогу своим PIN-кодом.",
        "kk": "Қызметкер дабылды өз PIN-кодымен тоқтатты.",
    },
    "sos_on_the_way_title": {
        "en": "Police on the way: case {case}",
        "ru": "Полиция в пути: дело {case}",
        "kk": "Полиция жолда: іс {case}",
    },
    "sos_on_the_way_body": {
        "en": "{officer} ({post}) is on the way.",
        "ru": "{officer} ({post}) в пути.",
        "kk": "{officer} ({post}) жолда.",
    },
    "sos_on_the_way_eta": {
        "en": "{officer} ({post}) is on the way, about {eta} min.",
        "ru": "{officer} ({post}) в пути, примерно {eta} мин.",
        "kk": "{officer} ({post}) жолда, шамамен {eta} мин.",
    },
    "hazard_reason_threats": {"en": "threats", "ru": "угрозы", "kk": "қорқыту"},
    "hazard_reason_violence": {"en": "violence", "ru": "насилие", "kk": "зорлық-зомбылық"},
    "hazard_reason_weapon": {"en": "weapon", "ru": "оружие", "kk": "қару"},
    "hazard_reason_dog": {"en": "dangerous dog", "ru": "опасная собака", "kk": "қауіпті ит"},
    "hazard_reason_group": {"en": "aggressive group", "ru": "агрессивная группа",
                            "kk": "агрессивті топ"},
    "hazard_reason_other": {"en": "other danger", "ru": "другая опасность",
                            "kk": "басқа қауіп"},
}


def text(key: str, lang: str, **values) -> str:
    templates = TEXT[key]
    return templates.get(lang, templates["en"]).format(**values)


# Texts by (classifier, facts, legal date, language): a batch of incidents with
# the same facts is classified once, not once per recipient. The classifier is
# part of the key, so replacing it (tests do) is never hidden.
_TEXTS: dict[tuple, str] = {}
_TEXTS_MAX = 4096


def classification_text(incident, lang: str) -> str:
    """The provisional classification in `lang`: "Article 380-3 part N (...)" when within."""
    aggravating = list(incident.aggravating or [])
    facts = {"kind": incident.kind, "aggravating": aggravating,
             "victim_role": incident.victim_role, "on_duty": incident.on_duty,
             "occurred_at": incident.occurred_at}
    try:
        key = (law.classify, incident.kind, tuple(aggravating), incident.victim_role,
               incident.on_duty, law.local_date(incident.occurred_at), lang)
        hash(key)
    except (ValueError, TypeError):
        key = None  # facts classify() will refuse below
    if key in _TEXTS:
        return _TEXTS[key]
    try:
        result = law.classify(facts, lang)
    except (ValueError, law.LawConfigError):
        # Facts the rules no longer accept, or misconfigured rules: fall back to
        # what was stored at sync time (in the reporter's language).
        return (incident.classification or {}).get("summary") or ""
    if result["status"] == "within":
        part = next(p for p in law.rules()["parts"] if p["number"] == result["part"])
        found = text("article_part", lang, article=result["article"], part=result["part"],
                     summary=part["summary"][lang])
    else:
        found = result["summary"]
    if key is not None:
        if len(_TEXTS) >= _TEXTS_MAX:
            _TEXTS.clear()
        _TEXTS[key] = found
    return found


def happened_logged(incident, lang: str) -> str:
    """"happened 23:40 · logged 02:10" (local dates and times), or "" when they agree."""
    if incident.occurred_at == incident.logged_at:
        return ""
    return text("happened_logged", lang, occurred=local_time(incident.occurred_at),
                logged=local_time(incident.logged_at))


def time_change_text(before, after, lang: str) -> str:
    """The law notes for a moved time (left/entered the article's scope, another MCI year)."""
    try:
        return " ".join(note["text"] for note in law.time_change(before, after, lang))
    except (ValueError, law.LawConfigError):
        return ""


def _utc(instant) -> str | None:
    return None if instant is None else instant.astimezone(UTC).isoformat()


def incident_summary(incident) -> dict:
    """The small picture of the incident the service worker may show or cache."""
    post = incident.post
    return {
        "status": str(incident.status),
        # In UTC whatever the instant was written with (as stored).
        "occurred_at": _utc(incident.occurred_at),
        "logged_at": _utc(incident.logged_at),
        "occurred_at_pending": _utc(incident.occurred_at_pending),
        "case_number": incident.case_number,
        "police_needed": bool(incident.police_needed),
        "classification": {"status": incident.legal_status, "part": incident.legal_part},
        "post": None if post is None else {"id": post.id, "code": post.code,
                                           "name": post.hospital_name},
    }


def payload(kind: str, incident, lang: str, title: str, body: str, *,
            created_at, require_interaction: bool = False) -> dict:
    """The JSON document a push carries (see docs in api/push/service.py)."""
    doc = {
        "v": PAYLOAD_VERSION,
        "type": kind,
        "incident_id": str(incident.id),
        "case_number": incident.case_number,
        "lang": lang,
        "title": title,
        "body": body,
        "url": f"/#/incidents/{incident.id}",
        "tag": f"incident-{incident.id}",
        "require_interaction": require_interaction,
        "created_at": created_at.isoformat(),
        "incident": incident_summary(incident),
    }
    return fit(declarative(doc))


# "My devices" in the PWA (js/auth.js draws it on the account screen).
DEVICES_URL = "/#/account"


def local_time(instant) -> str:
    """dd.mm.yyyy HH:MM in Kazakhstan's time (the zone the law rules name)."""
    zone = law._zone(law.rules()["timezone"])
    return instant.astimezone(zone).strftime("%d.%m.%Y %H:%M")


def passkey_added(person, label: str, added_at) -> tuple[str, str]:
    """(title, body) telling `person`, in their language, that a passkey was added."""
    lang = person.language.value
    tell = text("tell_station_manager" if person.role == Role.CREW else "tell_supervisor", lang)
    when = local_time(added_at)
    body = (text("passkey_added_body", lang, label=label, when=when, tell=tell) if label
            else text("passkey_added_body_unnamed", lang, when=when, tell=tell))
    return text("passkey_added_title", lang), body


def hazard_raised(person, incident, flag) -> tuple[str, str]:
    """(title, body) telling the reporter, in their language, that a flag was raised."""
    lang = person.language.value
    case = incident.case_number or ""
    until = local_time(flag.expires_at)[:10]
    reason = text(f"hazard_reason_{flag.reason.value}", lang)
    return (text("hazard_raised_title", lang, case=case),
            text("hazard_raised_body", lang, case=case, reason=reason, until=until))


def account_payload(kind: str, lang: str, title: str, body: str, *, tag: str,
                    created_at, url: str = DEVICES_URL,
                    require_interaction: bool = False) -> dict:
    """A push about the person's account, not an incident: the same shape without
    the incident fields (the service worker shows title and body and opens url)."""
    return fit(declarative({
        "v": PAYLOAD_VERSION,
        "type": kind,
        "lang": lang,
        "title": title,
        "body": body,
        "url": url,
        "tag": tag,
        "require_interaction": require_interaction,
        "created_at": created_at.isoformat(),
    }))


# Declarative Web Push (W3C Push API; WebKit since iOS/iPadOS 18.4 and Safari 18.4):
# a push whose JSON has "web_push": 8030 is shown by the browser itself from its
# `notification` member; `navigate` (an absolute URL) opens on a tap. "mutable"
# lets a service worker, where one runs, handle it first (ours keeps the case
# number on the phone and shows the same words); if it shows nothing, the
# browser shows this one. Browsers without it just see the fields our service
# worker reads.
DECLARATIVE_WEB_PUSH = 8030


def declarative(doc: dict) -> dict:
    """Add the Declarative Web Push members to `doc` (from its title, body, url, tag, lang)."""
    base = current_app.config["BASE_URL"].rstrip("/")
    doc["web_push"] = DECLARATIVE_WEB_PUSH
    doc["notification"] = {
        "title": doc["title"],
        "body": doc["body"],
        "navigate": base + doc["url"],
        "lang": doc["lang"],
        "dir": "ltr",       # Russian, Kazakh and English all run left to right
        "tag": doc["tag"],
        "silent": False,    # a push nobody sees or hears is what iOS punishes
    }
    doc["mutable"] = True
    return doc


def size(doc: dict) -> int:
    return len(json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode())


def fit(doc: dict) -> dict:
    """Shorten the body (never the title or the link) until the payload fits."""
    while size(doc) > MAX_PAYLOAD_BYTES and len(doc["body"]) > 1:
        excess = size(doc) - MAX_PAYLOAD_BYTES
        # Cyrillic is two bytes a character, so cutting `excess` characters always fits.
        doc["body"] = doc["body"][: max(1, len(doc["body"]) - excess - 1)] + "…"
        if "notification" in doc:
            doc["notification"]["body"] = doc["body"]  # the declarative copy says the same
    return doc
