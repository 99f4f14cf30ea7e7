import "react-querybuilder/dist/query-builder.css";
import { Alert, Badge, Button, Group, Paper, Stack, Table, Tabs, Text, TextInput, Title } from "@mantine/core";
import { useDebouncedValue } from "@mantine/hooks";
import { QueryBuilderMantine } from "@react-querybuilder/mantine";
import { keepPreviousData, useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";
import { useTranslation } from "react-i18next";
import { QueryBuilder, type RuleGroupType } from "react-querybuilder";
import { useParams } from "react-router";
import { api, call } from "../api/client";
import { LoadMore, usePaged } from "../components/Paged";
import { Failure, QueryState } from "../components/States";
import { formatDate, formatNumber } from "../i18n";
import { RuleError, toDefinition, type Definition } from "../segments/definition";
import { useFields } from "../segments/fields";
import { ImportsAndExports } from "../segments/Jobs";
import { useCan } from "../session";

const START: RuleGroupType = { combinator: "and", rules: [] };

function SizeEstimate({ appId, definition }: { appId: string; definition: Definition | null }) {
  const { t } = useTranslation();
  const [debounced] = useDebouncedValue(definition, 400);
  const preview = useQuery({
    queryKey: ["segment-preview", appId, debounced],
    enabled: debounced !== null,
    placeholderData: keepPreviousData,
    queryFn: () =>
      call(
        api.POST("/v1/apps/{application-id}/clarion/segment-preview", {
          params: { path: { "application-id": appId } },
          body: { Definition: debounced!, SampleSize: 0 },
        }),
      ),
  });
  if (debounced === null) return <Text c="dimmed">{t("segments.addRule")}</Text>;
  if (preview.error) return <Failure error={preview.error} />;
  if (!preview.data) return <Text c="dimmed">{t("segments.estimating")}</Text>;
  return (
    <Group data-testid="segment-size">
      <Text fw={600}>{t("segments.size", { count: preview.data.Size, formatted: formatNumber(preview.data.Size) })}</Text>
      {Object.entries(preview.data.ChannelCounts).map(([channel, count]) => (
        <Badge key={channel} variant="light">
          {t(`channel.${channel}`, { defaultValue: channel })}: {formatNumber(count)}
        </Badge>
      ))}
    </Group>
  );
}

function Builder({ appId, onSaved }: { appId: string; onSaved: () => void }) {
  const { t } = useTranslation();
  const fields = useFields();
  const can = useCan();
  const [query, setQuery] = useState<RuleGroupType>(START);
  const [name, setName] = useState("");
  let definition: Definition | null = null;
  let problem: string | null = null;
  try {
    definition = toDefinition(query);
  } catch (error) {
    if (!(error instanceof RuleError)) throw error;
    problem = t(error.key, { field: fields.find((f) => f.name === error.field)?.label ?? error.field });
  }
  const save = useMutation({
    mutationFn: () =>
      call(
        api.POST("/v1/apps/{application-id}/segments", {
          params: { path: { "application-id": appId } },
          body: { Name: name, ...definition },
        }),
      ),
    onSuccess: () => {
      setQuery(START);
      setName("");
      onSaved();
    },
  });
  const submit = (event: FormEvent) => {
    event.preventDefault();
    save.mutate();
  };
  return (
    <Paper withBorder p="md" component="form" onSubmit={submit}>
      <Stack>
        <Title order={4}>{t("segments.new")}</Title>
        <TextInput label={t("segments.name")} value={name} onChange={(e) => setName(e.currentTarget.value)} required maw={360} />
        <QueryBuilderMantine>
          <QueryBuilder
            fields={fields}
            query={query}
            onQueryChange={setQuery}
            translations={{
              addRule: { label: t("segments.addRuleButton"), title: t("segments.addRuleButton") },
              addGroup: { label: t("segments.addGroup"), title: t("segments.addGroup") },
              removeRule: { label: "×", title: t("common.delete") },
              removeGroup: { label: "×", title: t("common.delete") },
              notToggle: { label: t("segments.not"), title: t("segments.not") },
            }}
            combinators={[
              { name: "and", label: t("segments.all") },
              { name: "or", label: t("segments.any") },
            ]}
            showNotToggle
            controlClassnames={{ queryBuilder: "queryBuilder-branches" }}
          />
        </QueryBuilderMantine>
        {problem ? <Alert color="red">{problem}</Alert> : <SizeEstimate appId={appId} definition={definition} />}
        {save.error && <Failure error={save.error} />}
        <Group>
          <Button type="submit" disabled={!definition || !can("CreateSegment")} loading={save.isPending}>
            {t("segments.save")}
          </Button>
        </Group>
      </Stack>
    </Paper>
  );
}

export default function Segments() {
  const { t } = useTranslation();
  const { appId = "" } = useParams();
  const queryClient = useQueryClient();
  const can = useCan();
  const segments = usePaged(["segments", appId], (token) =>
    call(
      api.GET("/v1/apps/{application-id}/segments", {
        params: { path: { "application-id": appId }, query: { "page-size": "50", token } },
      }),
    ),
  );
  return (
    <Stack>
      <Title order={2}>{t("segments.title")}</Title>
      <Tabs defaultValue="segments" keepMounted={false}>
        <Tabs.List>
          <Tabs.Tab value="segments">{t("segments.tab.segments")}</Tabs.Tab>
          <Tabs.Tab value="jobs">{t("segments.tab.jobs")}</Tabs.Tab>
        </Tabs.List>
        <Tabs.Panel value="segments" pt="md">
          <Stack>
            {can("CreateSegment") && (
              <Builder appId={appId} onSaved={() => void queryClient.invalidateQueries({ queryKey: ["segments", appId] })} />
            )}
            <QueryState
              query={segments.state}
              isEmpty={(data) => data.length === 0}
              empty={t("segments.empty")}
            >
              {(data) => (
                <Table striped data-testid="segments">
                  <Table.Thead>
                    <Table.Tr>
                      <Table.Th>{t("segments.name")}</Table.Th>
                      <Table.Th>{t("segments.type")}</Table.Th>
                      <Table.Th>{t("segments.version")}</Table.Th>
                      <Table.Th>{t("common.modified")}</Table.Th>
                    </Table.Tr>
                  </Table.Thead>
                  <Table.Tbody>
                    {data.map((segment) => (
                      <Table.Tr key={segment.Id}>
                        <Table.Td>{segment.Name}</Table.Td>
                        <Table.Td>{t(`segments.kind.${segment.SegmentType}`)}</Table.Td>
                        <Table.Td>{segment.Version}</Table.Td>
                        <Table.Td>{formatDate(segment.LastModifiedDate ?? segment.CreationDate)}</Table.Td>
                      </Table.Tr>
                    ))}
                  </Table.Tbody>
                </Table>
              )}
            </QueryState>
            <LoadMore paged={segments} />
          </Stack>
        </Tabs.Panel>
        <Tabs.Panel value="jobs" pt="md">
          <ImportsAndExports appId={appId} />
        </Tabs.Panel>
      </Tabs>
    </Stack>
  );
}
