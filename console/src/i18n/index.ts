// The one translation layer: every string a page shows comes from these catalogs. Korean must have every key English
// has (the `Catalog` type checks it at build time), and dates and numbers are formatted for the chosen language.
import i18n from "i18next";
import { initReactI18next } from "react-i18next";
import { en } from "./en";
import { ko } from "./ko";

export const LANGUAGES = ["en", "ko"] as const;
export type Language = (typeof LANGUAGES)[number];
const STORAGE_KEY = "clarion.language";

function initialLanguage(): Language {
  const stored = localStorage.getItem(STORAGE_KEY);
  if (stored === "en" || stored === "ko") return stored;
  return navigator.language.toLowerCase().startsWith("ko") ? "ko" : "en";
}

void i18n.use(initReactI18next).init({
  resources: { en: { translation: en }, ko: { translation: ko } },
  lng: initialLanguage(),
  fallbackLng: false,
  interpolation: { escapeValue: false },
  returnNull: false,
  // A key missing from the chosen language is recorded where the browser tests look for it.
  saveMissing: true,
  missingKeyHandler: (languages, _namespace, key) => {
    const w = window as unknown as { clarionMissingTranslations?: string[] };
    (w.clarionMissingTranslations ??= []).push(`${languages.join(",")}:${key}`);
  },
});
document.documentElement.lang = i18n.language;

export function setLanguage(language: string): void {
  localStorage.setItem(STORAGE_KEY, language);
  document.documentElement.lang = language;
  void i18n.changeLanguage(language);
}

export function formatDate(value: string | null | undefined): string {
  if (!value) return "";
  return new Intl.DateTimeFormat(i18n.language, { dateStyle: "medium", timeStyle: "short" }).format(new Date(value));
}

export function formatNumber(value: number): string {
  return new Intl.NumberFormat(i18n.language).format(value);
}

export default i18n;

export function formatPercent(value: number): string {
  return new Intl.NumberFormat(i18n.language, { style: "percent", maximumFractionDigits: 1 }).format(value);
}

/** An amount in a currency (an ISO code; another label is shown after a plain number). */
export function formatMoney(amount: number, currency: string): string {
  try {
    return new Intl.NumberFormat(i18n.language, { style: "currency", currency, maximumFractionDigits: 6 }).format(amount);
  } catch {
    return `${new Intl.NumberFormat(i18n.language, { maximumFractionDigits: 6 }).format(amount)} ${currency}`;
  }
}
