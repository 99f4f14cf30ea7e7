import { Button, Group, Table, TextInput, Title, Stack, Anchor } from "@mantine/core";
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";
import { useTranslation } from "react-i18next";
import { Link } from "react-router";
import { api, call } from "../api/client";
import { matching } from "../api/paging";
import { LoadMore, SearchBox, usePaged } from "../components/Paged";
import { Failure, QueryState } from "../components/States";
import { formatDate } from "../i18n";
import { useCan } from "../session";

export function Projects() {
  const { t } = useTranslation();
  const can = useCan();
  const projects = usePaged(["apps", "pages"], (token) =>
    call(api.GET("/v1/apps", { params: { query: { "page-size": "50", token } } })),
  );
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
      <SearchBox value={search} onChange={setSearch} />
      <QueryState query={projects.state} isEmpty={(data) => !data.length} empty={t("projects.empty")}>
        {(data) => (
          <Table striped data-testid="projects">
            <Table.Thead>
              <Table.Tr>
                <Table.Th>{t("projects.name")}</Table.Th>
                <Table.Th>{t("projects.id")}</Table.Th>
                <Table.Th>{t("common.created")}</Table.Th>
              </Table.Tr>
            </Table.Thead>
            <Table.Tbody>
              {data.filter(matching(search, (app) => `${app.Name} ${app.Id}`)).map(
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
      <LoadMore paged={projects} />
    </Stack>
  );
}
