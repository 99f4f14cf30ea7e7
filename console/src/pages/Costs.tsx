// A project's cost view (ClarionGetCosts): what Amazon Pinpoint would have charged for its months of messaging and
// what the operator's own providers charge, per month as a chart and per channel for the chosen month as a table.
import "@mantine/charts/styles.css";
import { BarChart } from "@mantine/charts";
import { Alert, Card, Group, Select, Stack, Table, Text, Title } from "@mantine/core";
import { useQueries } from "@tanstack/react-query";
import { useState } from "react";
import { useTranslation } from "react-i18next";
import { useParams } from "react-router";
import { api, call } from "../api/client";
import { Empty, Failure, Loading } from "../components/States";
import { formatMoney, formatNumber } from "../i18n";
import { compareBills, recentMonths } from "./costs";

const MONTHS = 6;

export default function Costs() {
  const { t } = useTranslation();
  const { appId = "" } = useParams();
  const months = recentMonths(MONTHS);
  const [month, setMonth] = useState(months[0]);
  const answers = useQueries({
    queries: months.map((m) => ({
      queryKey: ["costs", appId, m],
      queryFn: () => call(api.GET("/v1/clarion/costs", { params: { query: { month: m, "application-id": appId } } })),
    })),
  });
  const chosen = answers[months.indexOf(month)];
  const failed = answers.find((answer) => answer.error);
  const project = (index: number) => answers[index].data?.Projects[0];
  const first = project(0);
  const pinpointCurrency = first?.Pinpoint.Currency ?? "USD";
  const providerCurrency = first?.Provider.Currency ?? "USD";
  const chart = months
    .map((m, index) => ({
      month: m,
      pinpoint: Number(project(index)?.Pinpoint.Total ?? 0),
      provider: Number(project(index)?.Provider.Total ?? 0),
    }))
    .reverse();
  const current = chosen.data?.Projects[0];
  const lines = current ? compareBills(current.Pinpoint, current.Provider) : [];
  return (
    <Stack>
      <Group justify="space-between">
        <Title order={2}>{t("costs.title")}</Title>
        <Select
          label={t("costs.month")}
          data={months}
          value={month}
          onChange={(value) => value && setMonth(value)}
          allowDeselect={false}
          w={140}
        />
      </Group>
      <Text size="sm" c="dimmed">
        {t("costs.explain")}
      </Text>
      {failed ? (
        <Failure error={failed.error} />
      ) : answers.some((answer) => answer.isPending) ? (
        <Loading />
      ) : (
        <>
          <Card withBorder>
            <Title order={4} mb="sm">
              {t("costs.perMonth")}
            </Title>
            <BarChart
              h={240}
              data={chart}
              dataKey="month"
              series={[
                { name: "pinpoint", label: t("costs.pinpoint", { currency: pinpointCurrency }), color: "orange.6" },
                { name: "provider", label: t("costs.provider", { currency: providerCurrency }), color: "teal.6" },
              ]}
              valueFormatter={(value) => formatNumber(value)}
              withLegend
            />
          </Card>
          <Card withBorder>
            <Title order={4} mb="sm">
              {t("costs.perChannel", { month })}
            </Title>
            {!current || lines.length === 0 ? (
              <Empty>{t("costs.empty")}</Empty>
            ) : (
              <Stack>
                {!current.Pinpoint.Complete && (
                  <Alert color="yellow" data-testid="incomplete">
                    {t("costs.incomplete")}
                  </Alert>
                )}
                <Table striped data-testid="cost-lines">
                  <Table.Thead>
                    <Table.Tr>
                      <Table.Th>{t("costs.meter")}</Table.Th>
                      <Table.Th>{t("costs.country")}</Table.Th>
                      <Table.Th>{t("costs.quantity")}</Table.Th>
                      <Table.Th>{t("costs.pinpoint", { currency: current.Pinpoint.Currency })}</Table.Th>
                      <Table.Th>{t("costs.provider", { currency: current.Provider.Currency })}</Table.Th>
                    </Table.Tr>
                  </Table.Thead>
                  <Table.Tbody>
                    {lines.map((line) => (
                      <Table.Tr key={`${line.meter}/${line.country}`} data-testid={`cost-${line.meter}${line.country ? `-${line.country}` : ""}`}>
                        <Table.Td>{t(`costs.meters.${line.meter}`, { defaultValue: line.meter })}</Table.Td>
                        <Table.Td>{line.country}</Table.Td>
                        <Table.Td>{formatNumber(line.quantity)}</Table.Td>
                        <Table.Td>{line.pinpoint === null ? t("costs.unpriced") : formatMoney(line.pinpoint, current.Pinpoint.Currency)}</Table.Td>
                        <Table.Td>{line.provider === null ? t("costs.unpriced") : formatMoney(line.provider, current.Provider.Currency)}</Table.Td>
                      </Table.Tr>
                    ))}
                  </Table.Tbody>
                  <Table.Tfoot>
                    <Table.Tr>
                      <Table.Th colSpan={3}>{t("costs.total")}</Table.Th>
                      <Table.Th data-testid="pinpoint-total">{formatMoney(Number(current.Pinpoint.Total), current.Pinpoint.Currency)}</Table.Th>
                      <Table.Th data-testid="provider-total">{formatMoney(Number(current.Provider.Total), current.Provider.Currency)}</Table.Th>
                    </Table.Tr>
                  </Table.Tfoot>
                </Table>
              </Stack>
            )}
          </Card>
        </>
      )}
    </Stack>
  );
}
