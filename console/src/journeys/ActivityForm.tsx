// The form of one activity, for every kind Pinpoint's journeys have: its message (a template, its version and the
// channel's settings; a custom channel's webhook, endpoint types and data), its wait, holdout, branches and
// conditions, and where each of its ways out leads. A refusal naming one of its members is shown on that field.
import { Alert, Autocomplete, Button, Fieldset, Group, MultiSelect, NumberInput, Select, Stack, Text, TextInput, Textarea } from "@mantine/core";
import { useTranslation } from "react-i18next";
import type { Schemas } from "../api/client";
import { ConditionForm } from "./ConditionForm";
import { connect, patchBody } from "./edit";
import { errorPath, isAbout } from "./errors";
import { activityKind, slots, type Activity } from "./graph";
import { NextSelect, WaitTimeInput } from "./inputs";

type Condition = Schemas["SimpleCondition"];
const ENDPOINT_TYPES = ["EMAIL", "SMS", "VOICE", "PUSH", "GCM", "APNS", "APNS_SANDBOX", "APNS_VOIP", "APNS_VOIP_SANDBOX", "ADM", "BAIDU", "IN_APP", "CUSTOM"] as const;
export const MESSAGE_KINDS = ["EMAIL", "SMS", "PUSH", "CUSTOM"];

export interface ActivityContext {
  /** The other activities' ids, where a way out may lead. */
  others: string[];
  /** The journey's message activities, whose events a condition may test. */
  messageActivities: string[];
  segments: { value: string; label: string }[];
  /** Template names by type (EMAIL, SMS, PUSH). */
  templates: Record<string, string[]>;
  /** The server's refusal of the last save, if any. */
  error?: string;
}

export function ActivityForm({ id, activity, onChange, context }: {
  id: string;
  activity: Activity;
  onChange: (activity: Activity) => void;
  context: ActivityContext;
}) {
  const { t } = useTranslation();
  const kind = activityKind(activity);
  if (!kind) return null;
  const body = (activity[kind] ?? {}) as Record<string, unknown>;
  const where = `Activities.${id}.${kind}`;
  /** The refusal, when it is about this member of the activity (`exact`: that member itself). */
  const at = (member: string, exact = false) => {
    const error = context.error;
    if (!error) return undefined;
    return (exact ? errorPath(error) === `${where}.${member}` : isAbout(error, `${where}.${member}`)) ? error : undefined;
  };
  const set = (patch: Record<string, unknown>) => onChange(patchBody(activity, patch));
  const exit = (slot: string, target: string | undefined) => onChange(connect({ [id]: activity }, id, target, slot)[id]);
  const target = (slot: string) => slots(activity).find((item) => item.slot === slot)?.target;
  const config = (body.MessageConfig ?? {}) as Record<string, string | undefined>;
  const setConfig = (patch: Record<string, string | undefined>) => set({ MessageConfig: { ...config, ...patch } });
  const conditionProps = { segments: context.segments, messageActivities: context.messageActivities.filter((name) => name !== id) };
  const activityError = context.error && [`Activities.${id}`, where].includes(errorPath(context.error)) ? context.error : undefined;

  return (
    <Stack gap="xs" data-testid={`activity-form-${id}`}>
      {activityError && (
        <Alert color="red" role="alert">
          <span lang="en">{activityError}</span>
        </Alert>
      )}
      {MESSAGE_KINDS.includes(kind) && kind !== "CUSTOM" && (
        <>
          <Autocomplete
            label={t("journeys.edit.template")}
            data={context.templates[kind] ?? []}
            value={String(body.TemplateName ?? "")}
            onChange={(value) => set({ TemplateName: value || undefined })}
            error={at("TemplateName")}
          />
          <TextInput
            label={t("journeys.form.templateVersion")}
            description={t("journeys.form.templateVersionHint")}
            value={String(body.TemplateVersion ?? "")}
            onChange={(e) => set({ TemplateVersion: e.currentTarget.value || undefined })}
            error={at("TemplateVersion")}
          />
        </>
      )}
      {kind === "EMAIL" && (
        <TextInput
          label={t("campaigns.fromAddress")}
          description={t("campaigns.fromAddressHint")}
          value={config.FromAddress ?? ""}
          onChange={(e) => setConfig({ FromAddress: e.currentTarget.value || undefined })}
          error={at("MessageConfig")}
        />
      )}
      {kind === "SMS" && (
        <>
          <Select
            label={t("campaigns.smsType")}
            data={[
              { value: "PROMOTIONAL", label: t("campaigns.smsPromotional") },
              { value: "TRANSACTIONAL", label: t("campaigns.smsTransactional") },
            ]}
            value={config.MessageType ?? null}
            onChange={(value) => setConfig({ MessageType: value ?? undefined })}
            clearable
          />
          <Group grow>
            <TextInput label={t("journeys.form.originationNumber")} value={config.OriginationNumber ?? ""} onChange={(e) => setConfig({ OriginationNumber: e.currentTarget.value || undefined })} />
            <TextInput label={t("journeys.form.senderId")} value={config.SenderId ?? ""} onChange={(e) => setConfig({ SenderId: e.currentTarget.value || undefined })} />
          </Group>
        </>
      )}
      {kind === "PUSH" && (
        <TextInput
          label={t("journeys.form.timeToLive")}
          value={config.TimeToLive ?? ""}
          onChange={(e) => setConfig({ TimeToLive: e.currentTarget.value || undefined })}
          error={at("MessageConfig")}
        />
      )}
      {kind === "CUSTOM" && (
        <>
          <TextInput
            label={t("journeys.form.deliveryUri")}
            description={t("journeys.form.deliveryUriHint")}
            placeholder="https://hooks.example.com/deliver"
            value={String(body.DeliveryUri ?? "")}
            onChange={(e) => set({ DeliveryUri: e.currentTarget.value || undefined })}
            error={at("DeliveryUri")}
          />
          <MultiSelect
            label={t("journeys.form.endpointTypes")}
            description={t("journeys.form.endpointTypesHint")}
            data={ENDPOINT_TYPES.map((value) => ({ value, label: t(`channel.${value}`) }))}
            value={(body.EndpointTypes as string[] | undefined) ?? []}
            onChange={(value) => set({ EndpointTypes: value.length ? value : undefined })}
          />
          <Textarea
            label={t("campaigns.customData")}
            value={config.Data ?? ""}
            onChange={(e) => setConfig({ Data: e.currentTarget.value || undefined })}
            autosize
            minRows={2}
          />
        </>
      )}
      {kind === "Wait" && (
        <WaitTimeInput
          label={t("journeys.form.wait")}
          value={body.WaitTime as Schemas["WaitTime"]}
          onChange={(WaitTime) => set({ WaitTime })}
          error={at("WaitTime")}
        />
      )}
      {kind === "Holdout" && (
        <NumberInput
          label={t("journeys.edit.percentage")}
          min={0}
          max={100}
          value={Number(body.Percentage ?? 0)}
          onChange={(value) => set({ Percentage: Number(value) || 0 })}
          error={at("Percentage")}
        />
      )}
      {kind === "ContactCenter" && (
        <Text size="sm" c="dimmed">
          {t("journeys.form.contactCenterHint")}
        </Text>
      )}
      {kind === "RandomSplit" && <RandomBranches activity={activity} set={set} others={context.others} error={at("Branches")} />}
      {kind === "ConditionalSplit" && (
        <ConditionList
          activity={activity}
          set={set}
          at={at}
          conditionProps={conditionProps}
        />
      )}
      {kind === "MultiCondition" && <MultiBranches activity={activity} set={set} at={at} others={context.others} conditionProps={conditionProps} />}
      {(kind === "ConditionalSplit" || kind === "MultiCondition") && (
        <WaitTimeInput
          label={t("journeys.form.evaluationWait")}
          value={body.EvaluationWaitTime as Schemas["WaitTime"]}
          onChange={(EvaluationWaitTime) => set({ EvaluationWaitTime })}
          error={at("EvaluationWaitTime")}
          optional
        />
      )}
      {kind === "ConditionalSplit" && (
        <Group grow>
          <NextSelect label={t("journeys.form.ifYes")} value={target("yes")} choices={context.others} onChange={(next) => exit("yes", next)} />
          <NextSelect label={t("journeys.form.ifNo")} value={target("no")} choices={context.others} onChange={(next) => exit("no", next)} />
        </Group>
      )}
      {kind === "MultiCondition" && (
        <NextSelect label={t("journeys.form.otherwise")} value={target("else")} choices={context.others} onChange={(next) => exit("else", next)} />
      )}
      {slots(activity).some((slot) => slot.slot === "next") && (
        <NextSelect label={t("journeys.form.next")} value={target("next")} choices={context.others} onChange={(next) => exit("next", next)} />
      )}
    </Stack>
  );
}

type Set = (patch: Record<string, unknown>) => void;
type ConditionProps = { segments: { value: string; label: string }[]; messageActivities: string[] };

/** Adds a branch, or removes the last, within the split's limits. */
function BranchButtons<T>({ branches, limits, added, set }: { branches: T[]; limits: [number, number]; added: T; set: Set }) {
  const { t } = useTranslation();
  return (
    <Group>
      {branches.length < limits[1] && (
        <Button size="xs" variant="light" onClick={() => set({ Branches: [...branches, added] })}>
          {t("journeys.form.addBranch")}
        </Button>
      )}
      {branches.length > limits[0] && (
        <Button size="xs" variant="subtle" color="red" onClick={() => set({ Branches: branches.slice(0, -1) })}>
          {t("journeys.form.removeBranch")}
        </Button>
      )}
    </Group>
  );
}

/** A random split's 2 to 5 branches: each its percentage and where it leads. */
function RandomBranches({ activity, set, others, error }: { activity: Activity; set: Set; others: string[]; error?: string }) {
  const { t } = useTranslation();
  const branches = activity.RandomSplit?.Branches ?? [];
  const change = (index: number, patch: Schemas["RandomSplitEntry"]) =>
    set({ Branches: branches.map((branch, i) => (i === index ? { ...branch, ...patch } : branch)) });
  const total = branches.reduce((sum, branch) => sum + (branch.Percentage ?? 0), 0);
  return (
    <Fieldset legend={t("journeys.form.branches")}>
      <Stack gap="xs">
        {branches.map((branch, index) => (
          <Group key={index} align="end" grow>
            <NumberInput
              label={t("journeys.form.branchShare", { n: index + 1 })}
              min={1}
              max={100}
              value={branch.Percentage ?? 0}
              onChange={(value) => change(index, { Percentage: Number(value) || 0 })}
            />
            <NextSelect label={t("journeys.form.then")} value={branch.NextActivity} choices={others} onChange={(NextActivity) => change(index, { NextActivity })} />
          </Group>
        ))}
        <Text size="sm" c={total === 100 && !error ? "dimmed" : "red"} lang={error ? "en" : undefined}>
          {error ?? t("journeys.form.branchTotal", { total })}
        </Text>
        <BranchButtons branches={branches} limits={[2, 5]} added={{ Percentage: 0 }} set={set} />
      </Stack>
    </Fieldset>
  );
}

/** A yes/no split's conditions, joined by ALL or ANY. */
function ConditionList({ activity, set, at, conditionProps }: {
  activity: Activity;
  set: Set;
  at: (member: string, exact?: boolean) => string | undefined;
  conditionProps: ConditionProps;
}) {
  const { t } = useTranslation();
  const condition = activity.ConditionalSplit?.Condition ?? {};
  const conditions = condition.Conditions ?? [];
  const setConditions = (next: Condition[]) => set({ Condition: { ...condition, Conditions: next } });
  return (
    <Fieldset legend={t("journeys.form.conditions")}>
      <Stack gap="xs">
        <Select
          label={t("journeys.form.operator")}
          data={[
            { value: "ALL", label: t("journeys.form.all") },
            { value: "ANY", label: t("journeys.form.any") },
          ]}
          value={condition.Operator ?? "ALL"}
          onChange={(Operator) => Operator && set({ Condition: { ...condition, Operator } })}
          allowDeselect={false}
          error={at("Condition.Conditions", true)}
        />
        {conditions.map((item, index) => (
          <Stack key={index} gap={2}>
            <ConditionForm
              label={t("journeys.form.condition", { n: index + 1 })}
              condition={item}
              onChange={(changed) => setConditions(conditions.map((old, i) => (i === index ? changed : old)))}
              error={at(`Condition.Conditions[${index}]`)}
              {...conditionProps}
            />
            {conditions.length > 1 && (
              <Button size="xs" variant="subtle" color="red" onClick={() => setConditions(conditions.filter((_, i) => i !== index))}>
                {t("journeys.form.removeCondition")}
              </Button>
            )}
          </Stack>
        ))}
        <Button size="xs" variant="light" onClick={() => setConditions([...conditions, {}])}>
          {t("journeys.form.addCondition")}
        </Button>
      </Stack>
    </Fieldset>
  );
}

/** A multivariate split's 1 to 4 branches, each a condition and where it leads; the first that holds is taken. */
function MultiBranches({ activity, set, at, others, conditionProps }: {
  activity: Activity;
  set: Set;
  at: (member: string, exact?: boolean) => string | undefined;
  others: string[];
  conditionProps: ConditionProps;
}) {
  const { t } = useTranslation();
  const branches = activity.MultiCondition?.Branches ?? [];
  const change = (index: number, patch: Schemas["MultiConditionalBranch"]) =>
    set({ Branches: branches.map((branch, i) => (i === index ? { ...branch, ...patch } : branch)) });
  const error = at("Branches", true);
  return (
    <Fieldset legend={t("journeys.form.branches")}>
      <Stack gap="xs">
        {error && (
          <Text size="sm" c="red" lang="en">
            {error}
          </Text>
        )}
        {branches.map((branch, index) => (
          <Stack key={index} gap={2}>
            <ConditionForm
              label={t("journeys.form.condition", { n: index + 1 })}
              condition={branch.Condition ?? {}}
              onChange={(Condition) => change(index, { Condition })}
              error={at(`Branches[${index}]`)}
              {...conditionProps}
            />
            <NextSelect label={t("journeys.form.then")} value={branch.NextActivity} choices={others} onChange={(NextActivity) => change(index, { NextActivity })} />
          </Stack>
        ))}
        <BranchButtons branches={branches} limits={[1, 4]} added={{ Condition: {} }} set={set} />
      </Stack>
    </Fieldset>
  );
}
