// Two inputs the activity forms share: a wait (for a duration, until a moment, or none) and where a way out leads.
import { Group, Select, TextInput } from "@mantine/core";
import { useTranslation } from "react-i18next";
import type { Schemas } from "../api/client";

type WaitTime = Schemas["WaitTime"];

/** WaitTime: WaitFor (an ISO 8601 duration) or WaitUntil (an ISO 8601 instant); `optional` offers no wait at all. */
export function WaitTimeInput({ label, value, onChange, error, optional = false }: {
  label: string;
  value: WaitTime | null | undefined;
  onChange: (value: WaitTime | undefined) => void;
  error?: string;
  optional?: boolean;
}) {
  const { t } = useTranslation();
  const mode = value?.WaitUntil != null ? "until" : value?.WaitFor != null ? "for" : "none";
  const modes = [
    ...(optional ? [{ value: "none", label: t("journeys.form.noWait") }] : []),
    { value: "for", label: t("journeys.form.waitFor") },
    { value: "until", label: t("journeys.form.waitUntil") },
  ];
  return (
    <Group align="start" wrap="nowrap" gap="xs">
      <Select
        label={label}
        data={modes}
        value={mode}
        onChange={(next) => onChange(next === "for" ? { WaitFor: "PT1H" } : next === "until" ? { WaitUntil: "" } : undefined)}
        allowDeselect={false}
        w={150}
      />
      {mode !== "none" && (
        <TextInput
          key={mode}
          label={t(mode === "for" ? "journeys.form.duration" : "journeys.form.instant")}
          placeholder={mode === "for" ? "PT1H, P1D" : "2030-01-01T09:00:00Z"}
          value={(mode === "for" ? value?.WaitFor : value?.WaitUntil) ?? ""}
          onChange={(e) => onChange(mode === "for" ? { WaitFor: e.currentTarget.value } : { WaitUntil: e.currentTarget.value })}
          error={error}
          style={{ flex: 1 }}
        />
      )}
    </Group>
  );
}

/** Where one way out leads: another activity of the journey, or nowhere (the path ends there). */
export function NextSelect({ label, value, choices, onChange }: {
  label: string;
  value: string | null | undefined;
  choices: string[];
  onChange: (value: string | undefined) => void;
}) {
  const { t } = useTranslation();
  return (
    <Select
      label={label}
      placeholder={t("journeys.form.end")}
      data={choices}
      value={value ?? null}
      onChange={(next) => onChange(next ?? undefined)}
      clearable
      searchable
    />
  );
}
