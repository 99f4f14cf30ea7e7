// A project's journeys, searchable, each opening its read-only canvas (JourneyCanvas, loaded on demand).
import { Anchor, Badge, Stack, Table, TextInput, Title } from "@mantine/core";
import { useQuery } from "@tanstack/react-query";
import { useState } from "react";
import { useTranslation } from "react-i18next";
import { Link, useParams } from "react-router";
import { api, call } from "../api/client";
import { QueryState } from "../components/States";
import { formatDate } from "../i18n";

export default function Journeys() {
  const { t } = useTranslation();
  const { appId = "" } = useParams();
  const [search, setSearch] = useState("");
  const journeys = useQuery({
    queryKey: ["journeys", appId],
    queryFn: () =>
      call(api.GET("/v1/apps/{application-id}/journeys", { params: { path: { "application-id": appId }, query: { "page-size": "1000" } } })),
  });
  return (
    <Stack>
      <Title order={2}>{t("journeys.title")}</Title>
      <TextInput
        placeholder={t("common.search")}
        aria-label={t("common.search")}
        value={search}
        onChange={(e) => setSearch(e.currentTarget.value)}
        maw={320}
      />
      <QueryState query={journeys} isEmpty={(data) => !data.Item?.length} empty={t("journeys.empty")}>
        {(data) => (
          <Table striped data-testid="journeys">
            <Table.Thead>
              <Table.Tr>
                <Table.Th>{t("journeys.name")}</Table.Th>
                <Table.Th>{t("journeys.state")}</Table.Th>
                <Table.Th>{t("common.created")}</Table.Th>
              </Table.Tr>
            </Table.Thead>
            <Table.Tbody>
              {(data.Item ?? [])
                .filter((journey) => `${journey.Name} ${journey.Id}`.toLowerCase().includes(search.toLowerCase()))
                .map((journey) => (
                  <Table.Tr key={journey.Id}>
                    <Table.Td>
                      <Anchor component={Link} to={`/apps/${appId}/journeys/${journey.Id}`}>
                        {journey.Name}
                      </Anchor>
                    </Table.Td>
                    <Table.Td>
                      <Badge variant="light">{t(`journeys.states.${journey.State ?? "DRAFT"}`, { defaultValue: journey.State ?? "" })}</Badge>
                    </Table.Td>
                    <Table.Td>{formatDate(journey.CreationDate)}</Table.Td>
                  </Table.Tr>
                ))}
            </Table.Tbody>
          </Table>
        )}
      </QueryState>
    </Stack>
  );
}
