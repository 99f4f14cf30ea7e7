import { Badge, Button, Checkbox, Group, NumberInput, Paper, Progress, Select, Stack, Stepper, Table, Text, TextInput, Textarea, Title } from "@mantine/core";
import { keepPreviousData, useInfiniteQuery, useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { useTranslation } from "react-i18next";
import { useParams } from "react-router";
import { api, call } from "../api/client";
import { Failure, QueryState } from "../components/States";
import { formatDate, formatNumber } from "../i18n";
import { useCan } from "../session";

interface Draft {
  name: string;
  segmentId: string | null;
  template: string | null;
  subject: string;
  html: string;
  fromAddress: string;
  when: "now" | "later";
  startTime: string;
  localTime: boolean;
  quietStart: string;
  quietEnd: string;
  holdout: number;
  dailyLimit: number | "";
}

const EMPTY: Draft = {
  name: "",
  segmentId: null,
  template: null,
  subject: "",
  html: "",
  fromAddress: "",
  when: "now",
  startTime: "",
  localTime: false,
  quietStart: "",
  quietEnd: "",
  holdout: 0,
  dailyLimit: "",
};

/** The CreateCampaign request the wizard's answers make (an email campaign). */
function request(draft: Draft) {
  const quiet = draft.quietStart && draft.quietEnd ? { QuietTime: { Start: draft.quietStart, End: draft.quietEnd } } : {};
  return {
    Name: draft.name,
    SegmentId: draft.segmentId ?? "",
    HoldoutPercent: draft.holdout || undefined,
    Limits: draft.dailyLimit ? { Daily: Number(draft.dailyLimit) } : undefined,
    Schedule: {
      StartTime: draft.when === "now" ? "IMMEDIATE" : draft.startTime,
      Frequency: "ONCE" as const,
      IsLocalTime: draft.localTime || undefined,
      ...quiet,
    },
    ...(draft.template
      ? { TemplateConfiguration: { EmailTemplate: { Name: draft.template } } }
      : {
          MessageConfiguration: {
            EmailMessage: { Title: draft.subject, HtmlBody: draft.html, FromAddress: draft.fromAddress || undefined },
          },
        }),
  };
}

function Wizard({ appId, onCreated }: { appId: string; onCreated: (id: string) => void }) {
  const { t } = useTranslation();
  const [step, setStep] = useState(0);
  const [draft, setDraft] = useState<Draft>(EMPTY);
  const set = (patch: Partial<Draft>) => setDraft({ ...draft, ...patch });
  const segments = useQuery({
    queryKey: ["segments-all", appId],
    queryFn: () => call(api.GET("/v1/apps/{application-id}/segments", { params: { path: { "application-id": appId } } })),
  });
  const templates = useQuery({
    queryKey: ["email-templates"],
    queryFn: () => call(api.GET("/v1/templates", { params: { query: { "template-type": "EMAIL" } } })),
  });
  const create = useMutation({
    mutationFn: () =>
      call(api.POST("/v1/apps/{application-id}/campaigns", { params: { path: { "application-id": appId } }, body: request(draft) })),
    onSuccess: (campaign) => {
      setDraft(EMPTY);
      setStep(0);
      onCreated(campaign.Id);
    },
  });
  const ready = [draft.name && draft.segmentId, draft.template || (draft.subject && draft.html), draft.when === "now" || draft.startTime, true];
  return (
    <Paper withBorder p="md">
      <Stepper active={step} onStepClick={setStep} size="sm">
        <Stepper.Step label={t("campaigns.step.audience")}>
          <Stack maw={480}>
            <TextInput label={t("campaigns.name")} value={draft.name} onChange={(e) => set({ name: e.currentTarget.value })} required />
            <Select
              label={t("campaigns.segment")}
              data={(segments.data?.Item ?? []).map((s) => ({ value: s.Id, label: s.Name ?? s.Id }))}
              value={draft.segmentId}
              onChange={(value) => set({ segmentId: value })}
              searchable
            />
          </Stack>
        </Stepper.Step>
        <Stepper.Step label={t("campaigns.step.message")}>
          <Stack maw={560}>
            <Select
              label={t("campaigns.template")}
              placeholder={t("campaigns.noTemplate")}
              data={(templates.data?.Item ?? []).map((item) => item.TemplateName)}
              value={draft.template}
              onChange={(value) => set({ template: value })}
              clearable
            />
            {!draft.template && (
              <>
                <TextInput label={t("templates.field.Subject")} value={draft.subject} onChange={(e) => set({ subject: e.currentTarget.value })} />
                <Textarea label={t("templates.field.HtmlPart")} value={draft.html} onChange={(e) => set({ html: e.currentTarget.value })} autosize minRows={4} />
                <TextInput label={t("campaigns.fromAddress")} description={t("campaigns.fromAddressHint")} value={draft.fromAddress} onChange={(e) => set({ fromAddress: e.currentTarget.value })} />
              </>
            )}
          </Stack>
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
  const campaigns = useInfiniteQuery({
    queryKey: ["campaigns", appId],
    queryFn: ({ pageParam }) =>
      call(
        api.GET("/v1/apps/{application-id}/campaigns", {
          params: { path: { "application-id": appId }, query: { "page-size": "50", token: pageParam } },
        }),
      ),
    initialPageParam: undefined as string | undefined,
    getNextPageParam: (page) => page.NextToken ?? undefined,
  });
  const items = campaigns.data?.pages.flatMap((page) => page.Item);
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
      <QueryState query={{ isPending: campaigns.isPending, error: campaigns.error, data: items }} isEmpty={(data) => data.length === 0} empty={t("campaigns.empty")}>
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
      {campaigns.hasNextPage && (
        <Button variant="light" onClick={() => void campaigns.fetchNextPage()} loading={campaigns.isFetchingNextPage}>
          {t("common.more")}
        </Button>
      )}
    </Stack>
  );
}
