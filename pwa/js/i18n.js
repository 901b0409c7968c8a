// Every string a person reads, in Russian, Kazakh and English.
export const STRINGS = {
  ru: {
    tagline: "Журнал нападений на бригады скорой помощи (статья 380-3 УК РК).",
    server: "Сервер",
    ok: "работает",
    down: "недоступен",
  },
  kk: {
    tagline: "Жедел жәрдем бригадаларына шабуылдар журналы (ҚР ҚК 380-3-бабы).",
    server: "Сервер",
    ok: "жұмыс істеп тұр",
    down: "қолжетімсіз",
  },
  en: {
    tagline: "A log of attacks on ambulance crews (Article 380-3 of the Criminal Code).",
    server: "Server",
    ok: "running",
    down: "unreachable",
  },
};

const STORAGE_KEY = "qorgau.lang";

// The person's choice if they made one, else the device's language, else Russian.
export function chooseLanguage(stored = localStorage.getItem(STORAGE_KEY),
                               device = navigator.languages || [navigator.language]) {
  if (stored && STRINGS[stored]) return stored;
  for (const tag of device) {
    const base = String(tag).toLowerCase().split("-")[0];
    if (STRINGS[base]) return base;
  }
  return "ru";
}

export function setLanguage(lang) {
  localStorage.setItem(STORAGE_KEY, lang);
}

export function t(lang, key) {
  return (STRINGS[lang] && STRINGS[lang][key]) || STRINGS.en[key] || key;
}
