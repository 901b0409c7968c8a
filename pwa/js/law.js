// Article 380-3 classification on the phone, from the rules document the API
// serves at /api/v1/law/rules (cached by the PWA for use without signal).
//
// This mirrors api/law/service.py rule for rule and returns the same shape;
// tests/test_law_js.py runs both on the same cases. The server's
// classification is the authority; this one is shown while offline.

export class LawConfigError extends Error {
  constructor(message) {
    super(message);
    this.name = 'LawConfigError';
  }
}

// Same accepted form as the server: RFC 3339 with an explicit offset, since a
// time without one would be read in the phone's own zone.
const ISO_INSTANT = /^(\d{4})-(\d{2})-(\d{2})T([01]\d|2[0-3]):[0-5]\d(:[0-5]\d(\.\d{1,6})?)?(Z|[+-]([01]\d|2[0-3]):[0-5]\d)$/;
// Same plausible years as the server (outside them, a typo).
const MIN_YEAR = 1900;
const MAX_YEAR = 9998;

function parseInstant(value) {
  if (value instanceof Date) {
    const y = value.getUTCFullYear();
    if (Number.isNaN(y) || y < MIN_YEAR || y > MAX_YEAR) {
      throw new RangeError(`occurred_at must be a valid Date in the years ${MIN_YEAR}-${MAX_YEAR}`);
    }
    return value.getTime();
  }
  const m = typeof value === 'string' ? ISO_INSTANT.exec(value) : null;
  if (!m) {
    throw new RangeError(
      `occurred_at must be an ISO 8601 date-time with a UTC offset, e.g. 2026-03-07T10:15:00+05:00; got ${JSON.stringify(value)}`);
  }
  const [year, month, day] = m.slice(1, 4).map(Number);
  if (year < MIN_YEAR || year > MAX_YEAR) {
    throw new RangeError(`occurred_at must be in the years ${MIN_YEAR}-${MAX_YEAR}; got ${JSON.stringify(value)}`);
  }
  // Date.parse would roll 30 February over into March; the server refuses it.
  const calendar = new Date(Date.UTC(year, month - 1, day));
  if (calendar.getUTCMonth() !== month - 1 || calendar.getUTCDate() !== day) {
    throw new RangeError(`occurred_at is not a valid date-time: ${JSON.stringify(value)}`);
  }
  // Date keeps milliseconds only; cut longer fractions so every engine parses it.
  const ms = Date.parse(value.replace(/(\.\d{3})\d+/, '$1'));
  if (Number.isNaN(ms)) throw new RangeError(`occurred_at is not a valid date-time: ${JSON.stringify(value)}`);
  return ms;
}

// Kazakhstan has kept UTC+5 all year since 2024-03-01 00:00 local (until then
// Almaty was UTC+6; tzdata 2024a). Used only where the browser's own time zone
// data is missing or older than that change.
const KZ_UTC5_FROM = Date.UTC(2024, 1, 29, 18, 0, 0); // 2024-03-01T00:00+06:00

export function fixedRuleLocalDate(ms) {
  const offsetHours = ms >= KZ_UTC5_FROM ? 5 : 6;
  return new Date(ms + offsetHours * 3600e3).toISOString().slice(0, 10);
}

const formatters = new Map();

function zoneFormatter(timeZone) {
  if (!formatters.has(timeZone)) {
    let fmt = null;
    try {
      fmt = new Intl.DateTimeFormat('en-US', {
        timeZone, year: 'numeric', month: '2-digit', day: '2-digit',
        hour: '2-digit', hourCycle: 'h23',
      });
      // A device whose tz data predates the 2024 change still says UTC+6 in
      // mid-2024; then the fixed rule is right and Intl is not.
      if (timeZone === 'Asia/Almaty') {
        const probe = Object.fromEntries(
          fmt.formatToParts(Date.UTC(2024, 5, 1, 12)).map((p) => [p.type, p.value]));
        if (probe.hour !== '17') fmt = null;
      }
    } catch (err) {
      if (!(err instanceof RangeError)) throw err; // unknown zone: fall back
      fmt = null;
    }
    formatters.set(timeZone, fmt);
  }
  return formatters.get(timeZone);
}

export function localDate(occurredAt, timeZone = 'Asia/Almaty') {
  const ms = parseInstant(occurredAt);
  const fmt = zoneFormatter(timeZone);
  if (!fmt) {
    if (timeZone !== 'Asia/Almaty') throw new LawConfigError(`unknown time zone ${timeZone}`);
    return fixedRuleLocalDate(ms);
  }
  const parts = Object.fromEntries(fmt.formatToParts(ms).map((p) => [p.type, p.value]));
  return `${parts.year.padStart(4, '0')}-${parts.month}-${parts.day}`;
}

function render(template, values) {
  return template.replace(/\{(\w+)\}/g, (_, name) => {
    if (!(name in values)) {
      throw new LawConfigError(`template placeholder {${name}} has no value: ${template}`);
    }
    return String(values[name]);
  });
}

function formatNumber(n, rules, lang) {
  // Grouping by hand, not toLocaleString: the separators come from the rules
  // so the phone and the server print exactly the same text.
  const sep = rules.number_format.group_separator[lang];
  return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, sep);
}

function formatDate(iso, rules, lang) {
  const [year, month, day] = iso.split('-');
  return render(rules.date_format[lang], { year, month, day });
}

function choice(facts, field, options) {
  if (!(field in facts)) throw new RangeError(`${field} is required`);
  const value = facts[field];
  if (typeof value !== 'string' || !options.has(value)) {
    throw new RangeError(
      `${field} must be one of ${[...options.keys()].join(', ')}; got ${JSON.stringify(value)}`);
  }
  return options.get(value);
}

// The one place that chooses a penalty's template, as the server's _variant.
function variant(penalty, mciKnown) {
  const base = ('min_mci' in penalty || 'min_years' in penalty) ? 'range' : 'up_to';
  const inMci = 'min_mci' in penalty || 'max_mci' in penalty;
  return mciKnown || !inMci ? base : `${base}_mci_only`;
}

function penaltyOut(penalty, mciKzt, rules, lang) {
  const out = { ...penalty };
  // Anything measured in MCI (fines, correctional labour) is also shown in
  // tenge, when that year's MCI is known.
  if (mciKzt !== null) {
    if ('min_mci' in out) out.min_kzt = out.min_mci * mciKzt;
    if ('max_mci' in out) out.max_kzt = out.max_mci * mciKzt;
  }
  const name = variant(out, mciKzt !== null);
  const template = rules.penalty_templates[out.type]?.[name];
  // An older cached rules document may lack the MCI-only wording.
  if (!template) throw new LawConfigError(`no ${name} template for ${out.type}`);
  const values = {};
  for (const [k, v] of Object.entries(out)) {
    if (Number.isInteger(v)) values[k] = formatNumber(v, rules, lang);
  }
  out.text = render(template[lang], values);
  return out;
}

function mciMissing(year, rules, lang) {
  const texts = rules.warnings?.mci_missing;
  if (!texts) throw new LawConfigError('warnings lacks mci_missing');
  return { code: 'mci_missing', year, text: render(texts[lang], { year }) };
}

/**
 * A provisional classification of `facts` under Article 380-3.
 * facts: {kind, aggravating: [ids], victim_role, on_duty: bool, occurred_at}.
 * Throws RangeError naming the field for an unknown value. In a year the MCI
 * table lacks, amounts stay in MCI (no tenge, never zero) and `warnings` says so.
 */
export function classify(rules, facts, lang = 'en') {
  if (!rules.languages.includes(lang)) {
    throw new RangeError(`lang must be one of ${rules.languages.join(', ')}; got ${JSON.stringify(lang)}`);
  }
  if (facts === null || typeof facts !== 'object') throw new RangeError('facts must be an object');

  const kind = choice(facts, 'kind', new Map(rules.kinds.map((k) => [k.id, k])));
  const role = choice(facts, 'victim_role', new Map(rules.victim_roles.map((r) => [r.id, r])));
  const circumstances = new Map(rules.aggravating_circumstances.map((c) => [c.id, c]));
  const given = facts.aggravating ?? [];
  if (!Array.isArray(given)) throw new RangeError('aggravating must be a list of circumstance ids');
  for (const id of given) {
    if (!circumstances.has(id)) {
      throw new RangeError(
        `aggravating must contain only ${[...circumstances.keys()].join(', ')}; got ${JSON.stringify(id)}`);
    }
  }
  if (typeof facts.on_duty !== 'boolean') {
    throw new RangeError(`on_duty must be true or false; got ${JSON.stringify(facts.on_duty)}`);
  }
  if (!('occurred_at' in facts)) throw new RangeError('occurred_at is required');
  const day = localDate(facts.occurred_at, rules.timezone);
  const year = Number(day.slice(0, 4));

  const found = new Set();
  // ISO dates compare correctly as strings.
  if (day < rules.in_force_date) found.add('before_in_force');
  if (!role.protected) found.add('victim_not_protected');
  if (!facts.on_duty) found.add('not_on_duty');
  if (kind.act === null) found.add(kind.reason);
  // Reasons in the document's order; an outside reason wins over "pending".
  const outside = rules.reasons.filter((r) => found.has(r.code) && r.status === 'outside');
  const pending = rules.reasons.filter((r) => found.has(r.code) && r.status === 'pending');
  const status = outside.length ? 'outside' : pending.length ? 'pending' : 'within';

  const mciKzt = rules.mci[String(year)] ?? null;
  const result = {
    status,
    article: rules.article,
    part: null,
    aggravated: false,
    aggravating: [],
    penalties: [],
    mci_year: year,
    mci_kzt: mciKzt,
    investigated_by: null,
    summary: '',
    reason: null,
    reasons: [],
    warnings: [],
    disclaimer: rules.disclaimer[lang],
    local_date: day,
    rules_version: rules.version,
    lang,
  };

  if (status !== 'within') {
    const inForce = formatDate(rules.in_force_date, rules, lang);
    const reasons = (outside.length ? outside : pending).map((r) => ({
      code: r.code, text: render(r.text[lang], { in_force_date: inForce }),
    }));
    result.reasons = reasons;
    result.reason = reasons[0];
    result.summary = render(rules.summary_templates[status][lang],
      { article: rules.article, reason: reasons[0].text });
    return result;
  }

  const applied = [...circumstances.keys()].filter((id) => given.includes(id));
  const aggravated = applied.length > 0;
  const part = rules.parts.find((p) => p.act === kind.act && p.aggravated === aggravated);
  const template = aggravated ? 'within_aggravated' : 'within';
  Object.assign(result, {
    part: part.number,
    aggravated,
    aggravating: applied,
    penalties: part.penalties.map((p) => penaltyOut(p, mciKzt, rules, lang)),
    investigated_by: rules.investigated_by[lang],
    summary: render(rules.summary_templates[template][lang], {
      article: rules.article,
      part: part.number,
      part_summary: part.summary[lang],
      circumstances: applied.map((id) => circumstances.get(id).label[lang])
        .join(rules.list_separator[lang]),
    }),
  });
  // Only where an amount is in MCI does its missing tenge value matter.
  if (mciKzt === null && part.penalties.some((p) => 'min_mci' in p || 'max_mci' in p)) {
    result.warnings.push(mciMissing(year, rules, lang));
  }
  return result;
}

/**
 * What moving an incident's time from `before` to `after` does in law:
 * [{code, text}] for leaving or entering the article's scope (the in-force
 * date) and for a change of MCI year, by local dates in Kazakhstan. Empty when
 * neither moves. api/law/service.py time_change says the same.
 */
export function timeChange(rules, before, after, lang = 'en') {
  if (!rules.languages.includes(lang)) {
    throw new RangeError(`lang must be one of ${rules.languages.join(', ')}; got ${JSON.stringify(lang)}`);
  }
  const oldDay = localDate(before, rules.timezone);
  const newDay = localDate(after, rules.timezone);
  const start = rules.in_force_date;
  const texts = rules.time_change;
  if (!texts) throw new LawConfigError('the rules lack time_change');
  const values = {
    article: rules.article, in_force_date: formatDate(start, rules, lang),
    from_year: Number(oldDay.slice(0, 4)), year: Number(newDay.slice(0, 4)),
  };
  const notes = [];
  if ((oldDay >= start) !== (newDay >= start)) {
    const code = newDay < start ? 'left_scope' : 'entered_scope';
    notes.push({ code, text: render(texts[code][lang], values) });
  }
  if (values.from_year !== values.year) {
    notes.push({ code: 'mci_year', text: render(texts.mci_year[lang], values) });
  }
  return notes;
}
