import { Badge, Button, Checkbox, Fieldset, Group, MultiSelect, NumberInput, Paper, Progress, Select, Stack, Stepper, Table, Tabs, Text, TextInput, Textarea, Title } from "@mantine/core";
import { keepPreviousData, useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { useTranslation } from "react-i18next";
import { useParams } from "react-router";
import { useSegmentOptions, useTemplates } from "../api/choices";
import { api, call } from "../api/client";
import {
  CHANNELS,
  EMPTY,
  ENDPOINT_TYPES,
  contentReady,
  defaultShare,
  request,
  sendingChannels,
  type Channel,
  type Content,
  type Draft,
  type EndpointType,
  type Treatment,
} from "../campaigns/request";
import { LoadMore, usePaged } from "../components/Paged";
import { Failure, QueryState } from "../components/States";
import { formatDate, formatNumber } from "../i18n";
import { LAYOUTS } from "../templates/api";
import { useCan } from "../session";

/** One treatment's message on each chosen channel: a template, or the message written here. */
function ContentForm({ channels, content, onChange, templates }: {
  channels: Channel[];
  content: Content;
  onChange: (content: Content) => void;
  templates: { TemplateName: string; TemplateType: string }[];
}) {
  const { t } = useTranslation();
  const set = (patch: Partial<Content>) => onChange({ ...content, ...patch });
  const setInApp = (patch: Record<string, string>) => set({ inApp: { ...content.inApp, ...patch } });
  const named = (type: string) => templates.filter((item) => item.TemplateType === type).map((item) => item.TemplateName);
  const template = (type: string, value: string | null, change: (value: string | null) => void) => (
    <Select
      label={t("campaigns.template")}
      placeholder={t("campaigns.noTemplate")}
      data={named(type)}
      value={value}
      onChange={change}
      clearable
    />
  );
  return (
    <Stack>
      {channels.includes("EMAIL") && (
        <Fieldset legend={t("channel.EMAIL")}>
          {template("EMAIL", content.emailTemplate, (value) => set({ emailTemplate: value }))}
          {!content.emailTemplate && (
            <>
              <TextInput label={t("templates.field.Subject")} value={content.subject} onChange={(e) => set({ subject: e.currentTarget.value })} />
              <Textarea label={t("templates.field.HtmlPart")} value={content.html} onChange={(e) => set({ html: e.currentTarget.value })} autosize minRows={4} />
              <TextInput label={t("campaigns.fromAddress")} description={t("campaigns.fromAddressHint")} value={content.fromAddress} onChange={(e) => set({ fromAddress: e.currentTarget.value })} />
            </>
          )}
        </Fieldset>
      )}
      {channels.includes("SMS") && (
        <Fieldset legend={t("channel.SMS")}>
          {template("SMS", content.smsTemplate, (value) => set({ smsTemplate: value }))}
          {!content.smsTemplate && (
            <>
              <Textarea label={t("campaigns.smsBody")} value={content.smsBody} onChange={(e) => set({ smsBody: e.currentTarget.value })} autosize minRows={2} />
              <Select
                label={t("campaigns.smsType")}
                data={[
                  { value: "PROMOTIONAL", label: t("campaigns.smsPromotional") },
                  { value: "TRANSACTIONAL", label: t("campaigns.smsTransactional") },
                ]}
                value={content.smsType}
                onChange={(value) => value && set({ smsType: value as Content["smsType"] })}
                allowDeselect={false}
              />
            </>
          )}
        </Fieldset>
      )}
      {channels.includes("PUSH") && (
        <Fieldset legend={t("channel.PUSH")}>
          {template("PUSH", content.pushTemplate, (value) => set({ pushTemplate: value }))}
          {!content.pushTemplate && (
            <>
              <TextInput label={t("campaigns.pushTitle")} value={content.pushTitle} onChange={(e) => set({ pushTitle: e.currentTarget.value })} />
              <Textarea label={t("campaigns.pushBody")} value={content.pushBody} onChange={(e) => set({ pushBody: e.currentTarget.value })} autosize minRows={2} />
              <TextInput label={t("campaigns.pushUrl")} description={t("campaigns.pushUrlHint")} value={content.pushUrl} onChange={(e) => set({ pushUrl: e.currentTarget.value })} />
            </>
          )}
        </Fieldset>
      )}
      {channels.includes("IN_APP") && (
        <Fieldset legend={t("channel.IN_APP")}>
          {template("INAPP", content.inAppTemplate, (value) => set({ inAppTemplate: value }))}
          {!content.inAppTemplate && (
            <>
              <Select
                label={t("templates.field.Layout")}
                data={LAYOUTS.map((value) => ({ value, label: t(`templates.layout.${value}`) }))}
                value={content.inApp.Layout ?? "MIDDLE_BANNER"}
                onChange={(value) => value && setInApp({ Layout: value })}
                allowDeselect={false}
              />
              <TextInput label={t("templates.field.Header")} value={content.inApp.Header ?? ""} onChange={(e) => setInApp({ Header: e.currentTarget.value })} />
              <Textarea label={t("templates.field.Body")} value={content.inApp.Body ?? ""} onChange={(e) => setInApp({ Body: e.currentTarget.value })} autosize minRows={2} />
              <Group grow>
                <TextInput label={t("templates.field.ButtonText")} value={content.inApp.ButtonText ?? ""} onChange={(e) => setInApp({ ButtonText: e.currentTarget.value })} />
                <TextInput label={t("templates.field.ButtonLink")} value={content.inApp.ButtonLink ?? ""} onChange={(e) => setInApp({ ButtonLink: e.currentTarget.value })} />
              </Group>
            </>
          )}
        </Fieldset>
      )}
      {channels.includes("CUSTOM") && (
        <Fieldset legend={t("channel.CUSTOM")}>
          <Textarea label={t("campaigns.customData")} value={content.customData} onChange={(e) => set({ customData: e.currentTarget.value })} autosize minRows={2} />
        </Fieldset>
      )}
    </Stack>
  );
}

function MessageStep({ draft, set, templates }: { draft: Draft; set: (patch: Partial<Draft>) => void; templates: { TemplateName: string; TemplateType: string }[] }) {
  const { t } = useTranslation();
  const [tab, setTab] = useState<string | null>("A");
  const letter = (index: number) => String.fromCharCode(66 + index); // B, C, ...
  const updateTreatment = (index: number, patch: Partial<Treatment>) =>
    set({ treatments: draft.treatments.map((treatment, i) => (i === index ? { ...treatment, ...patch } : treatment)) });
  return (
    <Stack maw={640}>
      <MultiSelect
        label={t("campaigns.channels")}
        description={t("campaigns.channelsHint")}
        data={CHANNELS.map((value) => ({ value, label: t(`channel.${value}`) }))}
        value={draft.channels}
        onChange={(value) => set({ channels: value as Channel[] })}
      />
      {sendingChannels(draft.channels).length > 1 && (
        <Checkbox
          label={t("campaigns.fallback", { order: sendingChannels(draft.channels).map((c) => t(`channel.${c}`)).join(" → ") })}
          checked={draft.fallback}
          onChange={(e) => set({ fallback: e.currentTarget.checked })}
        />
      )}
      {draft.channels.includes("CUSTOM") && (
        <Group grow align="start">
          <TextInput
            label={t("campaigns.customUri")}
            description={t("campaigns.customUriHint")}
            placeholder="https://hooks.example.com/deliver"
            value={draft.customUri}
            onChange={(e) => set({ customUri: e.currentTarget.value })}
          />
          <MultiSelect
            label={t("journeys.form.endpointTypes")}
            description={t("journeys.form.endpointTypesHint")}
            data={ENDPOINT_TYPES.map((value) => ({ value, label: t(`channel.${value}`) }))}
            value={draft.customTypes}
            onChange={(value) => set({ customTypes: value as EndpointType[] })}
          />
        </Group>
      )}
      <Tabs value={tab} onChange={setTab} keepMounted={false}>
        <Tabs.List>
          <Tabs.Tab value="A">{t("campaigns.treatmentDefault")}</Tabs.Tab>
          {draft.treatments.map((treatment) => (
            <Tabs.Tab key={treatment.name} value={treatment.name}>
              {t("campaigns.treatment", { name: treatment.name })}
            </Tabs.Tab>
          ))}
          {draft.treatments.length < 4 && (
            <Button
              variant="subtle"
              size="compact-sm"
              onClick={() => {
                const name = letter(draft.treatments.length);
                set({ treatments: [...draft.treatments, { name, sizePercent: 10, content: draft.content }] });
                setTab(name);
              }}
            >
              {t("campaigns.addTreatment")}
            </Button>
          )}
        </Tabs.List>
        <Tabs.Panel value="A" pt="sm">
          <ContentForm channels={draft.channels} content={draft.content} onChange={(content) => set({ content })} templates={templates} />
        </Tabs.Panel>
        {draft.treatments.map((treatment, index) => (
          <Tabs.Panel key={treatment.name} value={treatment.name} pt="sm">
            <Stack>
              <Group align="end">
                <NumberInput
                  label={t("campaigns.treatmentSize")}
                  min={1}
                  max={99}
                  value={treatment.sizePercent}
                  onChange={(value) => updateTreatment(index, { sizePercent: Number(value) || 0 })}
                />
                {index === draft.treatments.length - 1 && (
                  <Button
                    variant="subtle"
                    color="red"
                    onClick={() => {
                      set({ treatments: draft.treatments.slice(0, -1) });
                      setTab("A");
                    }}
                  >
                    {t("campaigns.removeTreatment")}
                  </Button>
                )}
              </Group>
              <ContentForm channels={draft.channels} content={treatment.content} onChange={(content) => updateTreatment(index, { content })} templates={templates} />
            </Stack>
          </Tabs.Panel>
        ))}
      </Tabs>
    </Stack>
  );
}

function Wizard({ appId, onCreated }: { appId: string; onCreated: (id: string) => void }) {
  const { t } = useTranslation();
  const [step, setStep] = useState(0);
  const [draft, setDraft] = useState<Draft>(EMPTY);
  const set = (patch: Partial<Draft>) => setDraft({ ...draft, ...patch });
  const segments = useSegmentOptions(appId);
  const templates = useTemplates();
  const create = useMutation({
    mutationFn: () =>
      call(api.POST("/v1/apps/{application-id}/campaigns", { params: { path: { "application-id": appId } }, body: request(draft) })),
    onSuccess: (campaign) => {
      setDraft(EMPTY);
      setStep(0);
      onCreated(campaign.Id);
    },
  });
  const share = defaultShare(draft);
  const messagesReady =
    draft.channels.length > 0 &&
    [draft.content, ...draft.treatments.map((treatment) => treatment.content)].every((content) => contentReady(draft.channels, content, draft.customUri));
  const ready = [draft.name && draft.segmentId, messagesReady, draft.when === "now" || draft.startTime, share > 0];
  return (
    <Paper withBorder p="md">
      <Stepper active={step} onStepClick={setStep} size="sm">
        <Stepper.Step label={t("campaigns.step.audience")}>
          <Stack maw={480}>
            <TextInput label={t("campaigns.name")} value={draft.name} onChange={(e) => set({ name: e.currentTarget.value })} required />
            <Select
              label={t("campaigns.segment")}
              data={segments}
              value={draft.segmentId}
              onChange={(value) => set({ segmentId: value })}
              searchable
            />
          </Stack>
        </Stepper.Step>
        <Stepper.Step label={t("campaigns.step.message")}>
          <MessageStep draft={draft} set={set} templates={templates} />
        </Stepper.Step>
        <Stepper.Step label={t("campaigns.step.schedule")}>
          <Stack maw={480}>
            <Select
              label={t("campaigns.when")}
              data={[
                { value: "now", label: t("campaigns.now") },
                { value: "later", label: t("campaigns.later") },
              ]}
              value={draft.when}
              onChange={(value) => set({ when: (value as Draft["when"]) ?? "now" })}
              allowDeselect={false}
            />
            {draft.when === "later" && (
              <TextInput label={t("campaigns.startTime")} placeholder="2026-12-24T09:00:00Z" value={draft.startTime} onChange={(e) => set({ startTime: e.currentTarget.value })} />
            )}
            <Checkbox label={t("campaigns.localTime")} checked={draft.localTime} onChange={(e) => set({ localTime: e.currentTarget.checked })} />
            {draft.channels.includes("IN_APP") && (
              <TextInput
                label={t("campaigns.inAppEvent")}
                description={t("campaigns.inAppEventHint")}
                placeholder="_session.start"
                value={draft.inAppEvent}
                onChange={(e) => set({ inAppEvent: e.currentTarget.value })}
              />
            )}
            <Group>
              <TextInput label={t("campaigns.quietStart")} placeholder="22:00" value={draft.quietStart} onChange={(e) => set({ quietStart: e.currentTarget.value })} />
              <TextInput label={t("campaigns.quietEnd")} placeholder="08:00" value={draft.quietEnd} onChange={(e) => set({ quietEnd: e.currentTarget.value })} />
            </Group>
          </Stack>
        </Stepper.Step>
        <Stepper.Step label={t("campaigns.step.limits")}>
          <Stack maw={480}>
            <NumberInput label={t("campaigns.holdout")} min={0} max={100} value={draft.holdout} onChange={(value) => set({ holdout: Number(value) || 0 })} />
            <NumberInput label={t("campaigns.dailyLimit")} min={1} value={draft.dailyLimit} onChange={(value) => set({ dailyLimit: value === "" ? "" : Number(value) })} />
            <Select
              label={t("campaigns.hook")}
              description={t("campaigns.hookHint")}
              data={[
                { value: "NONE", label: t("campaigns.hookNone") },
                { value: "FILTER", label: t("campaigns.hookFilter") },
                { value: "DELIVERY", label: t("campaigns.hookDelivery") },
              ]}
              value={draft.hookMode || "NONE"}
              onChange={(value) => set({ hookMode: value === "FILTER" || value === "DELIVERY" ? value : "" })}
              allowDeselect={false}
            />
            {draft.hookMode && (
              <>
                <TextInput label={t("campaigns.hookUrl")} placeholder="https://hooks.example.com/campaign" value={draft.hookUrl} onChange={(e) => set({ hookUrl: e.currentTarget.value })} />
                <TextInput label={t("campaigns.hookLambda")} description={t("campaigns.hookLambdaHint")} value={draft.hookLambda} onChange={(e) => set({ hookLambda: e.currentTarget.value })} />
              </>
            )}
            <Text size="sm" c={share > 0 ? undefined : "red"} data-testid="default-share">
              {t("campaigns.defaultShare", { percent: share })}
            </Text>
          </Stack>
        </Stepper.Step>
      </Stepper>
      {create.error && <Failure error={create.error} />}
      <Group mt="md">
        {step > 0 && (
          <Button variant="default" onClick={() => setStep(step - 1)}>
            {t("campaigns.back")}
          </Button>
        )}
        {step < 3 ? (
          <Button onClick={() => setStep(step + 1)} disabled={!ready[step]}>
            {t("campaigns.next")}
          </Button>
        ) : (
          <Button onClick={() => create.mutate()} loading={create.isPending} disabled={!ready.every(Boolean)}>
            {t("campaigns.create")}
          </Button>
        )}
      </Group>
    </Paper>
  );
}

/** A campaign's state and its runs' counts, refreshed every second while it runs. */
function Progress_({ appId, campaignId }: { appId: string; campaignId: string }) {
  const { t } = useTranslation();
  const path = { "application-id": appId, "campaign-id": campaignId };
  const campaign = useQuery({
    queryKey: ["campaign", appId, campaignId],
    queryFn: () => call(api.GET("/v1/apps/{application-id}/campaigns/{campaign-id}", { params: { path } })),
    refetchInterval: (query) => (query.state.data?.State?.CampaignStatus === "COMPLETED" ? false : 1000),
  });
  const status = campaign.data?.State?.CampaignStatus ?? "";
  // The status is part of the key so that the counts are fetched once more after the campaign completes: the
  // last poll before that may have read them mid-run.
  const activities = useQuery({
    queryKey: ["campaign-activities", appId, campaignId, status],
    queryFn: () => call(api.GET("/v1/apps/{application-id}/campaigns/{campaign-id}/activities", { params: { path } })),
    refetchInterval: status === "COMPLETED" ? false : 1000,
    placeholderData: keepPreviousData,
  });
  return (
    <Paper withBorder p="md" data-testid="campaign-progress">
      <Stack>
        <Group>
          <Title order={4}>{campaign.data?.Name}</Title>
          {status && <Badge data-testid="campaign-state">{t(`campaigns.state.${status}`)}</Badge>}
        </Group>
        {campaign.error && <Failure error={campaign.error} />}
        {(activities.data?.Item ?? []).map((activity) => {
          const total = activity.TotalEndpointCount ?? 0;
          const done = activity.SuccessfulEndpointCount ?? 0;
          return (
            <Stack key={activity.Id} gap={4}>
              <Text size="sm">
                {t("campaigns.run", { start: formatDate(activity.Start), sent: formatNumber(done), total: formatNumber(total) })}
              </Text>
              <Progress value={total ? (100 * done) / total : 0} />
            </Stack>
          );
        })}
      </Stack>
    </Paper>
  );
}

export default function Campaigns() {
  const { t } = useTranslation();
  const { appId = "" } = useParams();
  const can = useCan();
  const queryClient = useQueryClient();
  const [watching, setWatching] = useState<string | null>(null);
  const campaigns = usePaged(["campaigns", appId], (token) =>
    call(
      api.GET("/v1/apps/{application-id}/campaigns", {
        params: { path: { "application-id": appId }, query: { "page-size": "50", token } },
      }),
    ),
  );
  return (
    <Stack>
      <Title order={2}>{t("campaigns.title")}</Title>
      {can("CreateCampaign") && (
        <Wizard
          appId={appId}
          onCreated={(id) => {
            setWatching(id);
            void queryClient.invalidateQueries({ queryKey: ["campaigns", appId] });
          }}
        />
      )}
      {watching && <Progress_ appId={appId} campaignId={watching} />}
      <QueryState query={campaigns.state} isEmpty={(data) => data.length === 0} empty={t("campaigns.empty")}>
        {(data) => (
          <Table striped data-testid="campaigns">
            <Table.Thead>
              <Table.Tr>
                <Table.Th>{t("campaigns.name")}</Table.Th>
                <Table.Th>{t("campaigns.status")}</Table.Th>
                <Table.Th>{t("common.created")}</Table.Th>
              </Table.Tr>
            </Table.Thead>
            <Table.Tbody>
              {data.map((campaign) => (
                <Table.Tr key={campaign.Id} onClick={() => setWatching(campaign.Id)} style={{ cursor: "pointer" }}>
                  <Table.Td>{campaign.Name}</Table.Td>
                  <Table.Td>{campaign.State?.CampaignStatus && t(`campaigns.state.${campaign.State.CampaignStatus}`)}</Table.Td>
                  <Table.Td>{formatDate(campaign.CreationDate)}</Table.Td>
                </Table.Tr>
              ))}
            </Table.Tbody>
          </Table>
        )}
      </QueryState>
      <LoadMore paged={campaigns} />
    </Stack>
  );
}
