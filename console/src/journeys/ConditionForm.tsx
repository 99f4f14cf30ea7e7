// One condition of a split (SimpleCondition): the participant is in a segment, their endpoint matches a rule of the
// segment builder (endpoint dimensions), or the message an earlier activity sent them had one of some events.
import { Code, Group, Select, Stack, TagsInput, Text, TextInput } from "@mantine/core";
import { useState } from "react";
import { useTranslation } from "react-i18next";
import type { RuleType } from "react-querybuilder";
import type { Schemas } from "../api/client";
import { RuleError, dimensionsRule, ruleDimensions, type Dimensions } from "../segments/definition";
import { useFields } from "../segments/fields";

type Condition = Schemas["SimpleCondition"];
type Mode = "segment" | "dimensions" | "event";

/** The message events Clarion records, which a condition on an earlier message may test. */
export const MESSAGE_EVENTS = [
  "_email.send",
  "_email.delivered",
  "_email.open",
  "_email.click",
  "_email.unsubscribe",
  "_email.rejected",
  "_email.hardbounce",
  "_email.softbounce",
  "_email.complaint",
  "_SMS.BUFFERED",
  "_SMS.SUCCESS",
  "_SMS.FAILURE",
  "_SMS.OPTOUT",
  "_journey.send",
  "_journey.opened_notification",
];

function modeOf(condition: Condition): Mode {
  return condition.EventCondition ? "event" : condition.segmentDimensions ? "dimensions" : "segment";
}

/** An endpoint rule (field, operator, value) made into SegmentDimensions as the segment builder makes them. */
function DimensionsRule({ condition, onChange }: { condition: Condition; onChange: (condition: Condition) => void }) {
  const { t } = useTranslation();
  // ClarionBehavior is the segment builder's extension; a split's conditions take Pinpoint's dimensions.
  const fields = useFields().filter((field) => field.name !== "ClarionBehavior");
  // A stored condition opens as the rule that made it; one no single rule makes is shown as stored until replaced.
  const stored = condition.segmentDimensions ? dimensionsRule(condition.segmentDimensions as Dimensions) : null;
  const [rule, setRule] = useState<RuleType>(stored ?? { field: "Demographic.Channel", operator: "in", value: "" });
  const [problem, setProblem] = useState<string | null>(null);
  const field = fields.find((item) => item.name === rule.field) ?? fields[0];
  const operators = (field.operators ?? []) as { name: string; label: string }[];
  const values = (field.values ?? []) as { name: string; label: string }[];
  const change = (patch: Partial<RuleType>) => {
    const next = { ...rule, ...patch };
    setRule(next);
    try {
      onChange({ segmentDimensions: ruleDimensions(next) as Schemas["SegmentDimensions"] });
      setProblem(null);
    } catch (error) {
      if (!(error instanceof RuleError)) throw error;
      setProblem(t(error.key, { field: field.label }));
    }
  };
  return (
    <Stack gap={4}>
      <Group grow align="start" gap="xs">
        <Select
          label={t("journeys.condition.field")}
          data={fields.map((item) => ({ value: item.name, label: item.label }))}
          value={rule.field}
          onChange={(name) => {
            const chosen = fields.find((item) => item.name === name);
            if (chosen) change({ field: chosen.name, operator: String((chosen.operators?.[0] as { name: string }).name), value: chosen.defaultValue ?? "" });
          }}
          allowDeselect={false}
        />
        <Select
          label={t("journeys.condition.operator")}
          data={operators.map((item) => ({ value: item.name, label: item.label }))}
          value={rule.operator}
          onChange={(operator) => operator && change({ operator })}
          allowDeselect={false}
        />
      </Group>
      {values.length ? (
        <Select
          label={t("journeys.condition.value")}
          data={values.map((item) => ({ value: item.name, label: item.label }))}
          value={String(rule.value)}
          onChange={(value) => value && change({ value })}
          allowDeselect={false}
        />
      ) : (
        <TextInput
          label={t("journeys.condition.value")}
          placeholder={field.placeholder}
          value={String(rule.value ?? "")}
          onChange={(e) => change({ value: e.currentTarget.value })}
          error={problem}
        />
      )}
      {condition.segmentDimensions && !stored && rule.value === "" && (
        <Text size="xs" c="dimmed">
          {t("journeys.condition.stored")} <Code>{JSON.stringify(condition.segmentDimensions)}</Code>
        </Text>
      )}
    </Stack>
  );
}

export function ConditionForm({ label, condition, onChange, segments, messageActivities, error }: {
  label: string;
  condition: Condition;
  onChange: (condition: Condition) => void;
  segments: { value: string; label: string }[];
  messageActivities: string[];
  error?: string;
}) {
  const { t } = useTranslation();
  const [mode, setMode] = useState<Mode>(modeOf(condition));
  const event = condition.EventCondition;
  const eventType = event?.Dimensions?.EventType;
  const setEvent = (patch: { MessageActivity?: string; DimensionType?: "INCLUSIVE" | "EXCLUSIVE"; Values?: string[] }) =>
    onChange({
      EventCondition: {
        MessageActivity: patch.MessageActivity ?? event?.MessageActivity ?? undefined,
        Dimensions: {
          EventType: {
            DimensionType: patch.DimensionType ?? eventType?.DimensionType ?? "INCLUSIVE",
            Values: patch.Values ?? eventType?.Values ?? [],
          },
        },
      },
    });
  return (
    <Stack gap={4}>
      <Select
        label={label}
        data={(["segment", "dimensions", "event"] as const).map((value) => ({ value, label: t(`journeys.condition.${value}`) }))}
        value={mode}
        onChange={(next) => {
          if (!next || next === mode) return;
          setMode(next as Mode);
          onChange({});
        }}
        allowDeselect={false}
        error={error}
      />
      {mode === "segment" && (
        <Select
          label={t("journeys.segment")}
          data={segments}
          value={condition.SegmentCondition?.SegmentId ?? null}
          onChange={(SegmentId) => onChange(SegmentId ? { SegmentCondition: { SegmentId } } : {})}
          searchable
        />
      )}
      {mode === "dimensions" && <DimensionsRule condition={condition} onChange={onChange} />}
      {mode === "event" && (
        <>
          <Select
            label={t("journeys.condition.message")}
            data={messageActivities}
            value={event?.MessageActivity ?? null}
            onChange={(value) => setEvent({ MessageActivity: value ?? undefined })}
          />
          <Select
            label={t("journeys.condition.had")}
            data={[
              { value: "INCLUSIVE", label: t("journeys.condition.hadAny") },
              { value: "EXCLUSIVE", label: t("journeys.condition.hadNone") },
            ]}
            value={eventType?.DimensionType ?? "INCLUSIVE"}
            onChange={(value) => value && setEvent({ DimensionType: value as "INCLUSIVE" | "EXCLUSIVE" })}
            allowDeselect={false}
          />
          <TagsInput
            label={t("journeys.condition.events")}
            data={MESSAGE_EVENTS}
            value={eventType?.Values ?? []}
            onChange={(Values) => setEvent({ Values })}
          />
        </>
      )}
    </Stack>
  );
}
