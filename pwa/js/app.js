import { chooseLanguage, setLanguage, t } from "./i18n.js";

let lang = chooseLanguage();
let healthKey = "";

function render() {
  document.documentElement.lang = lang;
  for (const el of document.querySelectorAll("[data-i18n]")) {
    el.textContent = t(lang, el.dataset.i18n);
  }
  for (const button of document.querySelectorAll("[data-lang]")) {
    button.setAttribute("aria-pressed", String(button.dataset.lang === lang));
  }
  document.getElementById("health").textContent = healthKey ? t(lang, healthKey) : "…";
}

for (const button of document.querySelectorAll("[data-lang]")) {
  button.addEventListener("click", () => {
    lang = button.dataset.lang;
    setLanguage(lang);
    render();
  });
}

render();
fetch("/api/health")
  .then((r) => { healthKey = r.ok ? "ok" : "down"; })
  .catch(() => { healthKey = "down"; })
  .finally(render);
