// The journey's own settings: how people enter it, when it runs (start, end, time zone, each endpoint's local time), quiet time, the
// limits on its messages and entries, and how it reads its segment again. A refusal naming one is shown on it.
import { Checkbox, Fieldset, Group, NumberInput, Select, Stack, TextInput } from "@mantine/core";
import { useTranslation } from "react-i18next";
import { SETTINGS_FIELDS, settingsField } from "./errors";
import { LIMITS, TIMEZONES, type SettingsDraft } from "./settings";

export function SettingsForm({ draft, onChange, error, readOnly, entryFixed, segments }: {
  draft: SettingsDraft;
  segments: { value: string; label: string }[];
  onChange: (draft: SettingsDraft) => void;
  error?: string;
  readOnly: boolean;
  /** Past DRAFT, who enters is settled; the rest may still change. */
  entryFixed: boolean;
}) {
  const { t } = useTranslation();
  const set = (patch: Partial<SettingsDraft>) => onChange({ ...draft, ...patch });
  const claimed = error ? settingsField(error) : undefined;
  const at = (field: keyof typeof SETTINGS_FIELDS) => (claimed === field ? error : undefined);
  const count = (value: string | number): number | "" => (value === "" ? "" : Number(value));
  return (
    <Stack gap="sm" data-testid="journey-settings">
      <Fieldset legend={t("journeys.settings.entry")} disabled={readOnly || entryFixed}>
        <Stack gap="xs">
          <Select
            label={t("journeys.settings.entryBy")}
            data={[
              { value: "segment", label: t("journeys.settings.entrySegment") },
              { value: "event", label: t("journeys.settings.entryEvent") },
            ]}
            value={draft.entry}
            onChange={(entry) => entry && set({ entry: entry as SettingsDraft["entry"] })}
            allowDeselect={false}
            error={at("entry")}
          />
          {draft.entry === "event" && (
            <TextInput label={t("journeys.settings.eventType")} placeholder="purchase" value={draft.eventType} onChange={(e) => set({ eventType: e.currentTarget.value })} error={at("eventType")} />
          )}
          <Select
            label={t(draft.entry === "event" ? "journeys.settings.eventSegment" : "journeys.segment")}
            data={segments}
            value={draft.segmentId}
            onChange={(segmentId) => set({ segmentId })}
            clearable={draft.entry === "event"}
            searchable
            error={at("segmentId")}
          />
        </Stack>
      </Fieldset>
      <Fieldset legend={t("journeys.settings.schedule")} disabled={readOnly}>
        <Stack gap="xs">
          <TextInput label={t("journeys.settings.startTime")} placeholder="2030-01-01T09:00:00Z" value={draft.startTime} onChange={(e) => set({ startTime: e.currentTarget.value })} error={at("startTime")} />
          <TextInput label={t("journeys.settings.endTime")} placeholder="2030-02-01T09:00:00Z" value={draft.endTime} onChange={(e) => set({ endTime: e.currentTarget.value })} error={at("endTime")} />
          <Select label={t("journeys.settings.timezone")} data={TIMEZONES} value={draft.timezone} onChange={(timezone) => set({ timezone })} clearable searchable error={at("timezone")} />
          <Checkbox label={t("journeys.settings.localTime")} checked={draft.localTime} onChange={(e) => set({ localTime: e.currentTarget.checked })} />
        </Stack>
      </Fieldset>
      <Fieldset legend={t("journeys.settings.quietTime")} disabled={readOnly}>
        <Stack gap="xs">
          <Group grow align="start">
            <TextInput label={t("campaigns.quietStart")} placeholder="22:00" value={draft.quietStart} onChange={(e) => set({ quietStart: e.currentTarget.value })} error={at("quietStart")} />
            <TextInput label={t("campaigns.quietEnd")} placeholder="08:00" value={draft.quietEnd} onChange={(e) => set({ quietEnd: e.currentTarget.value })} error={at("quietEnd")} />
          </Group>
          <Checkbox label={t("journeys.settings.waitForQuietTime")} checked={draft.waitForQuietTime} onChange={(e) => set({ waitForQuietTime: e.currentTarget.checked })} />
        </Stack>
      </Fieldset>
      <Fieldset legend={t("journeys.settings.limits")} disabled={readOnly}>
        <Stack gap="xs">
          {LIMITS.map((name) => (
            <NumberInput
              key={name}
              label={t(`journeys.settings.${name}`)}
              min={0}
              value={draft.limits[name]}
              onChange={(value) => set({ limits: { ...draft.limits, [name]: count(value) } })}
              error={at(name)}
            />
          ))}
          <Group grow align="start">
            <NumberInput label={t("journeys.settings.timeframeCap")} min={0} value={draft.timeframeCap} onChange={(value) => set({ timeframeCap: count(value) })} error={at("timeframeCap")} />
            <NumberInput label={t("journeys.settings.timeframeDays")} min={0} value={draft.timeframeDays} onChange={(value) => set({ timeframeDays: count(value) })} error={at("timeframeDays")} />
          </Group>
          <TextInput label={t("journeys.settings.reentryInterval")} placeholder="P1D" value={draft.reentryInterval} onChange={(e) => set({ reentryInterval: e.currentTarget.value })} error={at("reentryInterval")} />
        </Stack>
      </Fieldset>
      <Fieldset legend={t("journeys.settings.refresh")} disabled={readOnly}>
        <Stack gap="xs">
          <TextInput
            label={t("journeys.settings.refreshFrequency")}
            description={t("journeys.settings.refreshFrequencyHint")}
            placeholder="PT1H"
            value={draft.refreshFrequency}
            onChange={(e) => set({ refreshFrequency: e.currentTarget.value })}
            error={at("refreshFrequency")}
          />
          <Checkbox
            label={t("journeys.settings.refreshOnSegmentUpdate")}
            checked={draft.refreshOnSegmentUpdate}
            onChange={(e) => set({ refreshOnSegmentUpdate: e.currentTarget.checked })}
            error={at("refreshOnSegmentUpdate")}
          />
        </Stack>
      </Fieldset>
      <Fieldset legend={t("journeys.kinds.ContactCenter")} disabled={readOnly}>
        <Stack gap="xs">
          <TextInput label={t("journeys.settings.connectCampaignArn")} description={t("journeys.settings.connectHint")} value={draft.connectCampaignArn} onChange={(e) => set({ connectCampaignArn: e.currentTarget.value })} />
          <TextInput label={t("journeys.settings.connectRoleArn")} value={draft.connectRoleArn} onChange={(e) => set({ connectRoleArn: e.currentTarget.value })} />
        </Stack>
      </Fieldset>
    </Stack>
  );
}
