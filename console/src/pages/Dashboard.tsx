// A project's dashboard: Pinpoint's KPI operations over the last days, as figures, charts over time, by channel and by
// campaign and journey. Charts come from @mantine/charts; the page is loaded on demand (App.tsx) to keep them out of
// the first download.
import "@mantine/charts/styles.css";
import { BarChart, LineChart } from "@mantine/charts";
import { Card, Group, Paper, SegmentedControl, SimpleGrid, Stack, Table, Text, Title } from "@mantine/core";
import { useQuery } from "@tanstack/react-query";
import { useState } from "react";
import { useTranslation } from "react-i18next";
import { useParams } from "react-router";
import { api, call } from "../api/client";
import { QueryState } from "../components/States";
import { formatNumber, formatPercent } from "../i18n";
import { applicationKpi, byGroup, joinSeries, lastDays, ratio, single, type DateRange } from "./kpi";

// The application KPIs the page reads, each once.
const KPIS = [
  "txn-emails-sent",
  "txn-emails-delivered",
  "txn-emails-unique-opens",
  "txn-emails-unique-clicks",
  "txn-sms-sent",
  "txn-sms-delivered",
  "unique-deliveries",
  "successful-delivery-rate",
  "email-open-rate",
  "txn-emails-sent-grouped-by-date",
  "txn-emails-delivered-grouped-by-date",
  "txn-emails-opened-grouped-by-date",
  "txn-emails-clicked-grouped-by-date",
  "txn-sms-sent-grouped-by-date",
  "txn-sms-delivered-grouped-by-date",
  "unique-deliveries-grouped-by-date",
  "txn-emails-delivery-rate-grouped-by-date",
  "txn-sms-delivery-rate-grouped-by-date",
  "successful-delivery-rate-grouped-by-date",
  "successful-deliveries-grouped-by-campaign",
  "unique-deliveries-grouped-by-campaign",
  "email-open-rate-grouped-by-campaign",
] as const;
type KpiName = (typeof KPIS)[number];
type Figures = Record<KpiName, Awaited<ReturnType<typeof applicationKpi>>>;

const JOURNEY_KPIS = ["journey-emails-sent", "journey-emails-delivered", "journey-emails-opened", "journey-emails-unsubscribed"] as const;

async function readFigures(appId: string, range: DateRange): Promise<Figures> {
  const rows = await Promise.all(KPIS.map((name) => applicationKpi(appId, name, range)));
  return Object.fromEntries(KPIS.map((name, i) => [name, rows[i]])) as Figures;
}

/** Each journey's email figures over the range (GetJourneyDateRangeKpi), with its name. */
async function readJourneys(appId: string, range: DateRange) {
  const listed = await call(
    api.GET("/v1/apps/{application-id}/journeys", { params: { path: { "application-id": appId }, query: { "page-size": "100" } } }),
  );
  return Promise.all(
    (listed.Item ?? []).map(async (journey) => {
      const values = await Promise.all(
        JOURNEY_KPIS.map(async (name) => {
          const answer = await call(
            api.GET("/v1/apps/{application-id}/journeys/{journey-id}/kpis/daterange/{kpi-name}", {
              params: {
                path: { "application-id": appId, "journey-id": journey.Id, "kpi-name": name },
                query: { "start-time": range.start, "end-time": range.end },
              },
            }),
          );
          return single(answer.KpiResult?.Rows);
        }),
      );
      return { id: journey.Id, name: journey.Name, sent: values[0], delivered: values[1], opened: values[2], optOuts: values[3] };
    }),
  );
}

function Figure({ label, value, testId }: { label: string; value: string; testId: string }) {
  return (
    <Paper withBorder p="sm" radius="md">
      <Text size="xs" c="dimmed">
        {label}
      </Text>
      <Text fw={700} size="xl" data-testid={testId}>
        {value}
      </Text>
    </Paper>
  );
}

export default function Dashboard() {
  const { t } = useTranslation();
  const { appId = "" } = useParams();
  const [days, setDays] = useState("31");
  const range = lastDays(Number(days));
  const rangeKey = range.start.slice(0, 10);
  const figures = useQuery({ queryKey: ["kpis", appId, rangeKey], queryFn: () => readFigures(appId, range) });
  const campaigns = useQuery({
    // Not ["campaigns", appId]: the Campaigns page keeps its paged list (another shape) under that key.
    queryKey: ["campaign-names", appId],
    queryFn: () =>
      call(api.GET("/v1/apps/{application-id}/campaigns", { params: { path: { "application-id": appId }, query: { "page-size": "1000" } } })),
  });
  const journeys = useQuery({ queryKey: ["journey-kpis", appId, rangeKey], queryFn: () => readJourneys(appId, range) });
  const campaignName = new Map((campaigns.data?.Item ?? []).map((campaign) => [campaign.Id, campaign.Name ?? campaign.Id]));
  const series = (names: Record<string, KpiName>) => Object.entries(names).map(([name]) => ({ name, label: t(`dashboard.series.${name}`) }));
  return (
    <Stack>
      <Group justify="space-between">
        <Title order={2}>{t("dashboard.title")}</Title>
        <SegmentedControl
          aria-label={t("dashboard.period")}
          value={days}
          onChange={setDays}
          data={[
            { value: "7", label: t("dashboard.days", { days: 7 }) },
            { value: "31", label: t("dashboard.days", { days: 31 }) },
          ]}
        />
      </Group>
      <QueryState
        query={figures}
        isEmpty={(data) => Object.values(data).every((rows) => rows.length === 0)}
        empty={t("dashboard.empty")}
      >
        {(data) => {
          const emailsSent = single(data["txn-emails-sent"]);
          const emailsDelivered = single(data["txn-emails-delivered"]);
          const smsSent = single(data["txn-sms-sent"]);
          const smsDelivered = single(data["txn-sms-delivered"]);
          const overTime = {
            emailsSent: "txn-emails-sent-grouped-by-date",
            emailsDelivered: "txn-emails-delivered-grouped-by-date",
            emailsOpened: "txn-emails-opened-grouped-by-date",
            emailsClicked: "txn-emails-clicked-grouped-by-date",
            smsSent: "txn-sms-sent-grouped-by-date",
            smsDelivered: "txn-sms-delivered-grouped-by-date",
            campaignDeliveries: "unique-deliveries-grouped-by-date",
          } as const;
          const ratesOverTime = {
            emailDeliveryRate: "txn-emails-delivery-rate-grouped-by-date",
            smsDeliveryRate: "txn-sms-delivery-rate-grouped-by-date",
            campaignDeliveryRate: "successful-delivery-rate-grouped-by-date",
          } as const;
          const pick = (names: Record<string, KpiName>) =>
            Object.fromEntries(Object.entries(names).map(([name, kpi]) => [name, data[kpi]]));
          const deliveries = byGroup(data["successful-deliveries-grouped-by-campaign"]);
          const unique = byGroup(data["unique-deliveries-grouped-by-campaign"]);
          const openRate = byGroup(data["email-open-rate-grouped-by-campaign"]);
          const campaignIds = [...new Set([...deliveries.keys(), ...unique.keys(), ...openRate.keys()])].sort();
          return (
            <Stack>
              <SimpleGrid cols={{ base: 2, sm: 4 }}>
                <Figure testId="emails-sent" label={t("dashboard.emailsSent")} value={formatNumber(emailsSent)} />
                <Figure testId="email-delivery-rate" label={t("dashboard.emailDeliveryRate")} value={formatPercent(ratio(emailsDelivered, emailsSent))} />
                <Figure
                  testId="email-open-rate"
                  label={t("dashboard.emailOpenRate")}
                  value={formatPercent(ratio(single(data["txn-emails-unique-opens"]), emailsDelivered))}
                />
                <Figure
                  testId="email-click-rate"
                  label={t("dashboard.emailClickRate")}
                  value={formatPercent(ratio(single(data["txn-emails-unique-clicks"]), emailsDelivered))}
                />
                <Figure testId="sms-sent" label={t("dashboard.smsSent")} value={formatNumber(smsSent)} />
                <Figure testId="sms-delivery-rate" label={t("dashboard.smsDeliveryRate")} value={formatPercent(ratio(smsDelivered, smsSent))} />
                <Figure testId="campaign-deliveries" label={t("dashboard.campaignDeliveries")} value={formatNumber(single(data["unique-deliveries"]))} />
                <Figure
                  testId="campaign-delivery-rate"
                  label={t("dashboard.campaignDeliveryRate")}
                  value={formatPercent(single(data["successful-delivery-rate"]))}
                />
              </SimpleGrid>
              <Card withBorder>
                <Title order={4} mb="sm">
                  {t("dashboard.overTime")}
                </Title>
                <LineChart
                  h={260}
                  data={joinSeries("date", pick(overTime))}
                  dataKey="date"
                  series={series(overTime).map((s, i) => ({ ...s, color: PALETTE[i % PALETTE.length] }))}
                  valueFormatter={formatNumber}
                  withLegend
                />
              </Card>
              <SimpleGrid cols={{ base: 1, md: 2 }}>
                <Card withBorder>
                  <Title order={4} mb="sm">
                    {t("dashboard.ratesOverTime")}
                  </Title>
                  <LineChart
                    h={220}
                    data={joinSeries("date", pick(ratesOverTime))}
                    dataKey="date"
                    series={series(ratesOverTime).map((s, i) => ({ ...s, color: PALETTE[i % PALETTE.length] }))}
                    valueFormatter={formatPercent}
                    yAxisProps={{ domain: [0, 1], tickFormatter: formatPercent }}
                    withLegend
                  />
                </Card>
                <Card withBorder>
                  <Title order={4} mb="sm">
                    {t("dashboard.byChannel")}
                  </Title>
                  <BarChart
                    h={220}
                    data={[
                      { channel: t("channel.EMAIL"), sent: emailsSent, delivered: emailsDelivered },
                      { channel: t("channel.SMS"), sent: smsSent, delivered: smsDelivered },
                    ]}
                    dataKey="channel"
                    series={[
                      { name: "sent", label: t("dashboard.sent"), color: PALETTE[0] },
                      { name: "delivered", label: t("dashboard.delivered"), color: PALETTE[1] },
                    ]}
                    valueFormatter={formatNumber}
                    withLegend
                  />
                </Card>
              </SimpleGrid>
              <Card withBorder>
                <Title order={4} mb="sm">
                  {t("dashboard.byCampaign")}
                </Title>
                {campaignIds.length === 0 ? (
                  <Text c="dimmed">{t("dashboard.noCampaigns")}</Text>
                ) : (
                  <Table striped data-testid="by-campaign">
                    <Table.Thead>
                      <Table.Tr>
                        <Table.Th>{t("dashboard.campaign")}</Table.Th>
                        <Table.Th>{t("dashboard.successfulDeliveries")}</Table.Th>
                        <Table.Th>{t("dashboard.uniqueDeliveries")}</Table.Th>
                        <Table.Th>{t("dashboard.openRate")}</Table.Th>
                      </Table.Tr>
                    </Table.Thead>
                    <Table.Tbody>
                      {campaignIds.map((id) => (
                        <Table.Tr key={id}>
                          <Table.Td>{campaignName.get(id) ?? id}</Table.Td>
                          <Table.Td>{formatNumber(deliveries.get(id) ?? 0)}</Table.Td>
                          <Table.Td>{formatNumber(unique.get(id) ?? 0)}</Table.Td>
                          <Table.Td>{formatPercent(openRate.get(id) ?? 0)}</Table.Td>
                        </Table.Tr>
                      ))}
                    </Table.Tbody>
                  </Table>
                )}
              </Card>
            </Stack>
          );
        }}
      </QueryState>
      <Card withBorder>
        <Title order={4} mb="sm">
          {t("dashboard.byJourney")}
        </Title>
        <QueryState query={journeys} isEmpty={(data) => data.length === 0} empty={t("dashboard.noJourneys")}>
          {(data) => (
            <Table striped data-testid="by-journey">
              <Table.Thead>
                <Table.Tr>
                  <Table.Th>{t("dashboard.journey")}</Table.Th>
                  <Table.Th>{t("dashboard.sent")}</Table.Th>
                  <Table.Th>{t("dashboard.delivered")}</Table.Th>
                  <Table.Th>{t("dashboard.opened")}</Table.Th>
                  <Table.Th>{t("dashboard.optOuts")}</Table.Th>
                </Table.Tr>
              </Table.Thead>
              <Table.Tbody>
                {data.map((journey) => (
                  <Table.Tr key={journey.id}>
                    <Table.Td>{journey.name}</Table.Td>
                    <Table.Td>{formatNumber(journey.sent)}</Table.Td>
                    <Table.Td>{formatNumber(journey.delivered)}</Table.Td>
                    <Table.Td>{formatNumber(journey.opened)}</Table.Td>
                    <Table.Td>{formatNumber(journey.optOuts)}</Table.Td>
                  </Table.Tr>
                ))}
              </Table.Tbody>
            </Table>
          )}
        </QueryState>
      </Card>
    </Stack>
  );
}

const PALETTE = ["blue.6", "teal.6", "grape.6", "orange.6", "red.6", "cyan.6", "lime.7"];
