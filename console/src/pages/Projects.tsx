import { Button, Group, Table, TextInput, Title, Stack, Anchor } from "@mantine/core";
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";
import { useTranslation } from "react-i18next";
import { Link } from "react-router";
import { api, call } from "../api/client";
import { Failure, QueryState } from "../components/States";
import { formatDate } from "../i18n";
import { useCan } from "../session";
import { useProjects } from "./Layout";

export function Projects() {
  const { t } = useTranslation();
  const can = useCan();
  const projects = useProjects();
  const queryClient = useQueryClient();
  const [name, setName] = useState("");
  const [search, setSearch] = useState("");
  const create = useMutation({
    mutationFn: () => call(api.POST("/v1/apps", { body: { Name: name } })),
    onSuccess: () => {
      setName("");
      void queryClient.invalidateQueries({ queryKey: ["apps"] });
    },
  });
  const submit = (event: FormEvent) => {
    event.preventDefault();
    create.mutate();
  };
  return (
    <Stack>
      <Title order={2}>{t("projects.title")}</Title>
      {can("CreateApp") && (
        <Group component="form" onSubmit={submit} align="end">
          <TextInput label={t("projects.name")} value={name} onChange={(e) => setName(e.currentTarget.value)} required />
          <Button type="submit" loading={create.isPending}>
            {t("projects.create")}
          </Button>
        </Group>
      )}
      {create.error && <Failure error={create.error} />}
      <TextInput
        placeholder={t("common.search")}
        aria-label={t("common.search")}
        value={search}
        onChange={(e) => setSearch(e.currentTarget.value)}
        maw={320}
      />
      <QueryState query={projects} isEmpty={(data) => !data.Item?.length} empty={t("projects.empty")}>
        {(data) => (
          <Table striped>
            <Table.Thead>
              <Table.Tr>
                <Table.Th>{t("projects.name")}</Table.Th>
                <Table.Th>{t("projects.id")}</Table.Th>
                <Table.Th>{t("common.created")}</Table.Th>
              </Table.Tr>
            </Table.Thead>
            <Table.Tbody>
              {(data.Item ?? []).filter((app) => `${app.Name} ${app.Id}`.toLowerCase().includes(search.toLowerCase())).map(
                (app) => (
                  <Table.Tr key={app.Id}>
                    <Table.Td>
                      <Anchor component={Link} to={`/apps/${app.Id}/send`}>
                        {app.Name}
                      </Anchor>
                    </Table.Td>
                    <Table.Td>{app.Id}</Table.Td>
                    <Table.Td>{formatDate(app.CreationDate)}</Table.Td>
                  </Table.Tr>
                ),
              )}
            </Table.Tbody>
          </Table>
        )}
      </QueryState>
    </Stack>
  );
}
