import { Alert, Button, Code, Group, MultiSelect, Stack, Table, TagsInput, TextInput, Title } from "@mantine/core";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";
import { useTranslation } from "react-i18next";
import { api, call } from "../api/client";
import { Failure, QueryState } from "../components/States";
import { formatDate } from "../i18n";
import { useSession } from "../session";
import { useProjects } from "./Layout";

const SEND_ONLY = ["SendMessages", "SendUsersMessages"];

/** Access keys for other systems: limited to projects, operations and source networks; the secret is shown once. */
export default function Keys() {
  const { t } = useTranslation();
  const session = useSession();
  const projects = useProjects();
  const queryClient = useQueryClient();
  const keys = useQuery({ queryKey: ["keys"], queryFn: () => call(api.GET("/v1/clarion/access-keys")) });
  const [description, setDescription] = useState("");
  const [chosenProjects, setProjects] = useState<string[]>([]);
  const [operations, setOperations] = useState<string[]>(SEND_ONLY);
  const [networks, setNetworks] = useState<string[]>([]);
  const refresh = () => queryClient.invalidateQueries({ queryKey: ["keys"] });
  const create = useMutation({
    mutationFn: () =>
      call(
        api.POST("/v1/clarion/access-keys", {
          body: { Description: description, Projects: chosenProjects, Operations: operations, AllowNetworks: networks },
        }),
      ),
    onSuccess: () => void refresh(),
  });
  const revoke = useMutation({
    mutationFn: (id: string) =>
      call(api.DELETE("/v1/clarion/access-keys/{access-key-id}", { params: { path: { "access-key-id": id } } })),
    onSuccess: () => void refresh(),
  });
  const submit = (event: FormEvent) => {
    event.preventDefault();
    create.mutate();
  };
  const scope = (values: string[]) => (values.includes("*") ? t("keys.all") : values.join(", "));
  return (
    <Stack>
      <Title order={2}>{t("keys.title")}</Title>
      <Stack component="form" onSubmit={submit} maw={640}>
        <TextInput label={t("keys.description")} value={description} onChange={(e) => setDescription(e.currentTarget.value)} />
        <MultiSelect
          label={t("keys.projects")}
          placeholder={t("keys.allProjects")}
          data={(projects.data?.Item ?? []).map((app) => ({ value: app.Id, label: app.Name }))}
          value={chosenProjects}
          onChange={setProjects}
          searchable
        />
        <MultiSelect
          label={t("keys.operations")}
          placeholder={t("keys.allOperations")}
          data={session.Operations}
          value={operations}
          onChange={setOperations}
          searchable
        />
        <TagsInput
          label={t("keys.networks")}
          description={t("keys.networksHint")}
          placeholder="203.0.113.0/24"
          value={networks}
          onChange={setNetworks}
        />
        <Group>
          <Button type="submit" loading={create.isPending}>
            {t("keys.create")}
          </Button>
        </Group>
      </Stack>
      {create.error && <Failure error={create.error} />}
      {create.data?.SecretAccessKey && (
        <Alert color="blue" title={t("keys.secretOnce")} data-testid="new-key">
          <Stack gap={4}>
            <span>
              {t("keys.id")}: <Code data-testid="new-key-id">{create.data.AccessKeyId}</Code>
            </span>
            <span>
              {t("keys.secret")}: <Code data-testid="new-key-secret">{create.data.SecretAccessKey}</Code>
            </span>
          </Stack>
        </Alert>
      )}
      {revoke.error && <Failure error={revoke.error} />}
      <QueryState query={keys} isEmpty={(data) => data.Item.length === 0} empty={t("keys.empty")}>
        {(data) => (
          <Table.ScrollContainer minWidth={760}>
            <Table striped data-testid="keys">
              <Table.Thead>
                <Table.Tr>
                  <Table.Th>{t("keys.id")}</Table.Th>
                  <Table.Th>{t("keys.description")}</Table.Th>
                  <Table.Th>{t("keys.projects")}</Table.Th>
                  <Table.Th>{t("keys.operations")}</Table.Th>
                  <Table.Th>{t("keys.networks")}</Table.Th>
                  <Table.Th>{t("common.created")}</Table.Th>
                  <Table.Th />
                </Table.Tr>
              </Table.Thead>
              <Table.Tbody>
                {data.Item.map((key) => (
                  <Table.Tr key={key.AccessKeyId}>
                    <Table.Td>{key.AccessKeyId}</Table.Td>
                    <Table.Td>{key.Description}</Table.Td>
                    <Table.Td>{scope(key.Projects)}</Table.Td>
                    <Table.Td>{scope(key.Operations)}</Table.Td>
                    <Table.Td>{key.AllowNetworks.join(", ")}</Table.Td>
                    <Table.Td>{key.Source === "store" ? formatDate(key.CreationDate) : t("keys.fromSettings")}</Table.Td>
                    <Table.Td>
                      {key.Source === "store" && (
                        <Button size="xs" color="red" variant="subtle" onClick={() => revoke.mutate(key.AccessKeyId)}>
                          {t("keys.revoke")}
                        </Button>
                      )}
                    </Table.Td>
                  </Table.Tr>
                ))}
              </Table.Tbody>
            </Table>
          </Table.ScrollContainer>
        )}
      </QueryState>
    </Stack>
  );
}
