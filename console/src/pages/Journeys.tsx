// A project's journeys, searchable, each opening its canvas (JourneyCanvas, loaded on demand); a new one is made
// here as a DRAFT and built on the canvas.
import { Anchor, Badge, Button, Group, Paper, Select, Stack, Table, TextInput, Title } from "@mantine/core";
import { useMutation } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";
import { useTranslation } from "react-i18next";
import { Link, useNavigate, useParams } from "react-router";
import { useSegmentOptions } from "../api/choices";
import { api, call } from "../api/client";
import { matching } from "../api/paging";
import { LoadMore, SearchBox, usePaged } from "../components/Paged";
import { Failure, QueryState } from "../components/States";
import { formatDate } from "../i18n";
import { useCan } from "../session";

/** A new DRAFT journey for a segment's members, opened on the canvas to be built. */
function NewJourney({ appId }: { appId: string }) {
  const { t } = useTranslation();
  const navigate = useNavigate();
  const [name, setName] = useState("");
  const [segmentId, setSegmentId] = useState<string | null>(null);
  const segments = useSegmentOptions(appId);
  const create = useMutation({
    mutationFn: () =>
      call(
        api.POST("/v1/apps/{application-id}/journeys", {
          params: { path: { "application-id": appId } },
          body: { Name: name, State: "DRAFT", StartCondition: { SegmentStartCondition: { SegmentId: segmentId ?? "" } } },
        }),
      ),
    onSuccess: (journey) => navigate(`/apps/${appId}/journeys/${journey.Id}`),
  });
  const submit = (event: FormEvent) => {
    event.preventDefault();
    create.mutate();
  };
  return (
    <Paper withBorder p="md" component="form" onSubmit={submit}>
      <Stack>
        <Group align="end">
          <TextInput label={t("journeys.name")} value={name} onChange={(e) => setName(e.currentTarget.value)} required />
          <Select
            label={t("journeys.segment")}
            data={segments}
            value={segmentId}
            onChange={setSegmentId}
            searchable
          />
          <Button type="submit" disabled={!name.trim() || !segmentId} loading={create.isPending}>
            {t("journeys.create")}
          </Button>
        </Group>
        {create.error && <Failure error={create.error} />}
      </Stack>
    </Paper>
  );
}

export default function Journeys() {
  const { t } = useTranslation();
  const { appId = "" } = useParams();
  const [search, setSearch] = useState("");
  const can = useCan();
  const journeys = usePaged(["journeys", appId], (token) =>
    call(
      api.GET("/v1/apps/{application-id}/journeys", {
        params: { path: { "application-id": appId }, query: { "page-size": "50", token } },
      }),
    ),
  );
  return (
    <Stack>
      <Title order={2}>{t("journeys.title")}</Title>
      {can("CreateJourney") && <NewJourney appId={appId} />}
      <SearchBox value={search} onChange={setSearch} />
      <QueryState query={journeys.state} isEmpty={(data) => !data.length} empty={t("journeys.empty")}>
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
              {data
                .filter(matching(search, (journey) => `${journey.Name} ${journey.Id}`))
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
      <LoadMore paged={journeys} />
    </Stack>
  );
}
