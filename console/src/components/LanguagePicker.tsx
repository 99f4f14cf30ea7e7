import { Select } from "@mantine/core";
import { useTranslation } from "react-i18next";
import { LANGUAGES, setLanguage } from "../i18n";

export function LanguagePicker() {
  const { t, i18n } = useTranslation();
  return (
    <Select
      aria-label={t("language.label")}
      size="xs"
      w={120}
      data={LANGUAGES.map((code) => ({ value: code, label: t(`language.${code}`) }))}
      value={i18n.language}
      onChange={(value) => value && setLanguage(value)}
      allowDeselect={false}
    />
  );
}
