// Audience: find endpoints (by id, address, user id or name=value attribute) and open a person's page — their
// endpoints, attributes, engagement score and timeline. Search and timeline are Clarion extensions
// (ClarionListEndpoints, ClarionGetTimeline); the rest is Pinpoint's GetEndpoint / GetUserEndpoints.
import { Anchor, Badge, Button, Group, Paper, SegmentedControl, SimpleGrid, Stack, Table, Text, TextInput, Title } from "@mantine/core";
import { useQuery } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";
import { useTranslation } from "react-i18next";
import { Link, useParams, useSearchParams } from "react-router";
import { api, call, type Schemas } from "../api/client";
import { LoadMore, usePaged } from "../components/Paged";
import { QueryState } from "../components/States";
import { formatDate, formatNumber } from "../i18n";

const PAGE = "25";

function personPath(appId: string, kind: "endpoints" | "users", id: string) {
  return `/apps/${appId}/audience/${kind}/${encodeURIComponent(id)}`;
}

export function AudienceSearch() {
  const { t } = useTranslation();
  const { appId = "" } = useParams();
  const [params, setParams] = useSearchParams();
  const search = params.get("q") ?? "";
  const view = params.get("view") === "users" ? "users" : "endpoints";
  const [text, setText] = useState(search);
  const submit = (event: FormEvent) => {
    event.preventDefault();
    setParams({ ...(text.trim() ? { q: text.trim() } : {}), ...(view === "users" ? { view } : {}) });
  };
  return (
    <Stack>
      <Title order={2}>{t("audience.title")}</Title>
      <SegmentedControl
        aria-label={t("audience.view")}
        value={view}
        onChange={(value) => setParams({ ...(search ? { q: search } : {}), ...(value === "users" ? { view: value } : {}) })}
        data={[
          { value: "endpoints", label: t("audience.view.endpoints") },
          { value: "users", label: t("audience.view.users") },
        ]}
        w="fit-content"
      />
      <Group component="form" onSubmit={submit} align="end" role="search">
        <TextInput
          label={t(view === "users" ? "audience.searchUsers" : "audience.search")}
          description={t(view === "users" ? "audience.searchUsersHint" : "audience.searchHint")}
          value={text}
          onChange={(e) => setText(e.currentTarget.value)}
          w={420}
        />
        <Button type="submit">{t("common.search")}</Button>
      </Group>
      {view === "users" ? <UsersList appId={appId} search={search} /> : <EndpointsList appId={appId} search={search} />}
    </Stack>
  );
}

/** The project's endpoints in id order, or those whose id, address or user id starts with the search. */
function EndpointsList({ appId, search }: { appId: string; search: string }) {
  const { t } = useTranslation();
  const endpoints = usePaged(["audience", appId, search], (token) =>
    call(
      api.GET("/v1/apps/{application-id}/clarion/endpoints", {
        params: { path: { "application-id": appId }, query: { search: search || undefined, "page-size": PAGE, token } },
      }),
    ),
  );
  return (
    <>
      <QueryState
        query={endpoints.state}
        isEmpty={(data) => data.length === 0}
        empty={search ? t("audience.noMatch") : t("audience.empty")}
      >
        {(data) => (
          <Table striped data-testid="endpoints">
            <Table.Thead>
              <Table.Tr>
                <Table.Th>{t("audience.endpoint")}</Table.Th>
                <Table.Th>{t("audience.channel")}</Table.Th>
                <Table.Th>{t("audience.address")}</Table.Th>
                <Table.Th>{t("audience.user")}</Table.Th>
                <Table.Th>{t("audience.status")}</Table.Th>
                <Table.Th>{t("common.created")}</Table.Th>
              </Table.Tr>
            </Table.Thead>
            <Table.Tbody>
              {data.map((endpoint) => (
                <Table.Tr key={endpoint.Id}>
                  <Table.Td>
                    <Anchor component={Link} to={personPath(appId, "endpoints", endpoint.Id)}>
                      {endpoint.Id}
                    </Anchor>
                  </Table.Td>
                  <Table.Td>{endpoint.ChannelType && t(`channel.${endpoint.ChannelType}`, { defaultValue: endpoint.ChannelType })}</Table.Td>
                  <Table.Td>{endpoint.Address}</Table.Td>
                  <Table.Td>
                    {endpoint.UserId && (
                      <Anchor component={Link} to={personPath(appId, "users", endpoint.UserId)}>
                        {endpoint.UserId}
                      </Anchor>
                    )}
                  </Table.Td>
                  <Table.Td>{status(t, endpoint.EndpointStatus, endpoint.OptOut)}</Table.Td>
                  <Table.Td>{formatDate(endpoint.CreationDate)}</Table.Td>
                </Table.Tr>
              ))}
            </Table.Tbody>
          </Table>
        )}
      </QueryState>
      <LoadMore paged={endpoints} />
    </>
  );
}

/** The project's users in id order with their endpoint counts (ClarionListProjectUsers), or those whose id starts
 * with the search; each opens the person's page. */
function UsersList({ appId, search }: { appId: string; search: string }) {
  const { t } = useTranslation();
  const users = usePaged(["audience-users", appId, search], (token) =>
    call(
      api.GET("/v1/apps/{application-id}/clarion/users", {
        params: { path: { "application-id": appId }, query: { search: search || undefined, "page-size": PAGE, token } },
      }),
    ),
  );
  return (
    <>
      <QueryState
        query={users.state}
        isEmpty={(data) => data.length === 0}
        empty={search ? t("audience.noUserMatch") : t("audience.noUsers")}
      >
        {(data) => (
          <Table striped data-testid="users-list">
            <Table.Thead>
              <Table.Tr>
                <Table.Th>{t("audience.user")}</Table.Th>
                <Table.Th>{t("audience.engagement.endpoints")}</Table.Th>
              </Table.Tr>
            </Table.Thead>
            <Table.Tbody>
              {data.map((user) => (
                <Table.Tr key={user.UserId}>
                  <Table.Td>
                    <Anchor component={Link} to={personPath(appId, "users", user.UserId)}>
                      {user.UserId}
                    </Anchor>
                  </Table.Td>
                  <Table.Td>{formatNumber(user.Endpoints)}</Table.Td>
                </Table.Tr>
              ))}
            </Table.Tbody>
          </Table>
        )}
      </QueryState>
      <LoadMore paged={users} />
    </>
  );
}

function status(t: (key: string) => string, endpointStatus?: string | null, optOut?: string | null) {
  return (
    <Group gap={4}>
      <Badge variant="light" color={endpointStatus === "ACTIVE" ? "green" : "gray"}>
        {endpointStatus === "ACTIVE" ? t("audience.active") : t("audience.inactive")}
      </Badge>
      {optOut === "ALL" && (
        <Badge variant="light" color="red">
          {t("audience.optedOut")}
        </Badge>
      )}
    </Group>
  );
}

function Engagement({ appId, person }: { appId: string; person: Person }) {
  const { t } = useTranslation();
  const engagement = useQuery({
    queryKey: ["engagement", appId, person],
    queryFn: () =>
      call(
        api.GET("/v1/apps/{application-id}/clarion/engagement", {
          params: { path: { "application-id": appId }, query: query(person) },
        }),
      ),
  });
  return (
    <QueryState query={engagement} isEmpty={() => false} empty={null}>
      {(data) => (
        <SimpleGrid cols={{ base: 2, sm: 4 }} data-testid="engagement">
          {(
            [
              ["score", formatNumber(data.Score)],
              ["recency", formatNumber(data.Recency)],
              ["frequency", formatNumber(data.Frequency)],
              ["monetary", formatNumber(data.Monetary)],
              ["events", formatNumber(data.Events)],
              ["revenue", formatNumber(data.Revenue)],
              ["lastActive", data.LastActiveDate ? formatDate(data.LastActiveDate) : t("audience.never")],
              ["endpoints", formatNumber(data.Endpoints)],
            ] as const
          ).map(([key, value]) => (
            <Paper withBorder p="sm" key={key}>
              <Text size="xs" c="dimmed">
                {t(`audience.engagement.${key}`)}
              </Text>
              <Text fw={600} size="lg">
                {value}
              </Text>
            </Paper>
          ))}
        </SimpleGrid>
      )}
    </QueryState>
  );
}

type Endpoint = Schemas["EndpointResponse"];

function Endpoints({ appId, person }: { appId: string; person: Person }) {
  const { t } = useTranslation();
  const endpoints = useQuery({
    queryKey: ["person-endpoints", appId, person],
    queryFn: async (): Promise<Endpoint[]> => {
      const path = { "application-id": appId };
      if (person.kind === "users") {
        const found = await call(api.GET("/v1/apps/{application-id}/users/{user-id}", { params: { path: { ...path, "user-id": person.id } } }));
        return found.Item ?? [];
      }
      return [await call(api.GET("/v1/apps/{application-id}/endpoints/{endpoint-id}", { params: { path: { ...path, "endpoint-id": person.id } } }))];
    },
  });
  return (
    <QueryState query={endpoints} isEmpty={(data) => data.length === 0} empty={t("audience.empty")}>
      {(data) => (
        <Table data-testid="person-endpoints">
          <Table.Thead>
            <Table.Tr>
              <Table.Th>{t("audience.endpoint")}</Table.Th>
              <Table.Th>{t("audience.channel")}</Table.Th>
              <Table.Th>{t("audience.address")}</Table.Th>
              <Table.Th>{t("audience.status")}</Table.Th>
              <Table.Th>{t("audience.attributes")}</Table.Th>
            </Table.Tr>
          </Table.Thead>
          <Table.Tbody>
            {data.map((endpoint) => (
              <Table.Tr key={endpoint.Id}>
                <Table.Td>{endpoint.Id}</Table.Td>
                <Table.Td>{endpoint.ChannelType && t(`channel.${endpoint.ChannelType}`, { defaultValue: endpoint.ChannelType })}</Table.Td>
                <Table.Td>{endpoint.Address}</Table.Td>
                <Table.Td>{status(t, endpoint.EndpointStatus, endpoint.OptOut)}</Table.Td>
                <Table.Td>
                  <Attributes values={{ ...endpoint.Attributes, ...endpoint.User?.UserAttributes }} />
                </Table.Td>
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
      )}
    </QueryState>
  );
}

function Attributes({ values }: { values: Record<string, string[] | undefined> }) {
  return (
    <Group gap={4}>
      {Object.entries(values).map(([name, list]) => (
        <Badge key={name} variant="outline" tt="none">
          {name}: {(list ?? []).join(", ")}
        </Badge>
      ))}
    </Group>
  );
}

type Entry = Schemas["TimelineEntry"];

function What({ entry }: { entry: Entry }) {
  const { t } = useTranslation();
  if (entry.Kind === "EVENT") return <Text size="sm">{entry.EventType}</Text>;
  const channel = t(`channel.${entry.Channel}`, { defaultValue: entry.Channel ?? "" });
  return <Text size="sm">{t("audience.sent", { channel, address: entry.Address })}</Text>;
}

function Outcome({ entry }: { entry: Entry }) {
  const { t } = useTranslation();
  if (entry.Kind === "MESSAGE") {
    const ok = entry.DeliveryStatus === "SUCCESSFUL";
    return (
      <Badge variant="light" color={ok ? "green" : "red"} title={entry.StatusMessage ?? undefined}>
        {t(`audience.delivery.${entry.DeliveryStatus}`, { defaultValue: entry.DeliveryStatus ?? "" })}
      </Badge>
    );
  }
  const message = entry.Attributes?.message_id;
  return message ? <Text size="xs" c="dimmed">{t("audience.aboutMessage", { id: message })}</Text> : null;
}

interface Shown {
  kind: "" | "EVENT" | "MESSAGE";
  eventType: string;
  from: string; // a day (YYYY-MM-DD) in the browser's time zone, from its start
  to: string; // through its end
}

/** The timeline's query for what is shown: ClarionGetTimeline's kind, event-type, start-time and end-time. */
function timelineQuery(shown: Shown): Record<string, string> {
  const query: Record<string, string> = {};
  if (shown.kind) query.kind = shown.kind;
  if (shown.eventType.trim() && shown.kind !== "MESSAGE") query["event-type"] = shown.eventType.trim();
  if (shown.from) query["start-time"] = new Date(`${shown.from}T00:00:00`).toISOString();
  if (shown.to) query["end-time"] = new Date(`${shown.to}T23:59:59.999`).toISOString();
  return query;
}

function TimelineFilters({ shown, onChange }: { shown: Shown; onChange: (shown: Shown) => void }) {
  const { t } = useTranslation();
  const [draft, setDraft] = useState(shown);
  const submit = (event: FormEvent) => {
    event.preventDefault();
    onChange(draft);
  };
  return (
    <Group component="form" onSubmit={submit} align="end" data-testid="timeline-filters">
      <Stack gap={4}>
        <Text size="sm" fw={500} id="timeline-kind">
          {t("audience.filter.kind")}
        </Text>
        <SegmentedControl
          aria-labelledby="timeline-kind"
          value={draft.kind || "ALL"}
          onChange={(value) => setDraft({ ...draft, kind: value === "ALL" ? "" : (value as Shown["kind"]) })}
          data={[
            { value: "ALL", label: t("audience.filter.all") },
            { value: "EVENT", label: t("audience.filter.events") },
            { value: "MESSAGE", label: t("audience.filter.messages") },
          ]}
        />
      </Stack>
      <TextInput
        label={t("audience.filter.eventType")}
        value={draft.eventType}
        disabled={draft.kind === "MESSAGE"}
        onChange={(e) => setDraft({ ...draft, eventType: e.currentTarget.value })}
        w={180}
      />
      <TextInput type="date" label={t("audience.filter.from")} value={draft.from} onChange={(e) => setDraft({ ...draft, from: e.currentTarget.value })} />
      <TextInput type="date" label={t("audience.filter.to")} value={draft.to} onChange={(e) => setDraft({ ...draft, to: e.currentTarget.value })} />
      <Button type="submit" variant="light">
        {t("audience.filter.apply")}
      </Button>
    </Group>
  );
}

function Timeline({ appId, person }: { appId: string; person: Person }) {
  const { t } = useTranslation();
  const [shown, setShown] = useState<Shown>({ kind: "", eventType: "", from: "", to: "" });
  const filters = timelineQuery(shown);
  const timeline = usePaged(["timeline", appId, person, filters], (token) =>
    call(
      api.GET("/v1/apps/{application-id}/clarion/timeline", {
        params: {
          path: { "application-id": appId },
          query: { ...query(person), ...filters, "page-size": PAGE, token },
        },
      }),
    ),
  );
  return (
    <Stack>
      <TimelineFilters shown={shown} onChange={setShown} />
      <QueryState
        query={timeline.state}
        isEmpty={(data) => data.length === 0}
        empty={Object.keys(filters).length ? t("audience.filter.none") : t("audience.noHistory")}
      >
        {(data) => (
          <Table striped data-testid="timeline">
            <Table.Thead>
              <Table.Tr>
                <Table.Th>{t("audience.when")}</Table.Th>
                <Table.Th>{t("audience.who")}</Table.Th>
                <Table.Th>{t("audience.what")}</Table.Th>
                <Table.Th>{t("audience.outcome")}</Table.Th>
                <Table.Th>{t("audience.source")}</Table.Th>
              </Table.Tr>
            </Table.Thead>
            <Table.Tbody>
              {data.map((entry, index) => (
                <Table.Tr key={`${entry.Date}-${index}`}>
                  <Table.Td>{formatDate(entry.Date)}</Table.Td>
                  <Table.Td>{entry.EndpointId}</Table.Td>
                  <Table.Td>
                    <What entry={entry} />
                  </Table.Td>
                  <Table.Td>
                    <Outcome entry={entry} />
                  </Table.Td>
                  <Table.Td>
                    {entry.CampaignId && t("audience.campaign", { id: entry.CampaignId })}
                    {entry.JourneyId && t("audience.journey", { id: entry.JourneyId })}
                  </Table.Td>
                </Table.Tr>
              ))}
            </Table.Tbody>
          </Table>
        )}
      </QueryState>
      <LoadMore paged={timeline} />
    </Stack>
  );
}

interface Person {
  kind: "endpoints" | "users";
  id: string;
}

function query(person: Person) {
  return person.kind === "users" ? { "user-id": person.id } : { "endpoint-id": person.id };
}

export function PersonPage({ kind }: { kind: Person["kind"] }) {
  const { t } = useTranslation();
  const { appId = "", personId = "" } = useParams();
  const person: Person = { kind, id: personId };
  return (
    <Stack>
      <Anchor component={Link} to={`/apps/${appId}/audience`} size="sm">
        {t("audience.back")}
      </Anchor>
      <Title order={2}>{t(kind === "users" ? "audience.userTitle" : "audience.endpointTitle", { id: personId })}</Title>
      <Title order={4}>{t("audience.engagementTitle")}</Title>
      <Engagement appId={appId} person={person} />
      <Title order={4}>{t("audience.endpointsTitle")}</Title>
      <Endpoints appId={appId} person={person} />
      <Title order={4}>{t("audience.timelineTitle")}</Title>
      <Timeline appId={appId} person={person} />
    </Stack>
  );
}
