import { Alert, Button, Code, Group, Select, Stack, Table, TextInput, Title } from "@mantine/core";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";
import { useTranslation } from "react-i18next";
import { api, call } from "../api/client";
import { Failure, QueryState } from "../components/States";
import { formatDate } from "../i18n";
import { useSession } from "../session";

const ROLES = ["admin", "marketer", "analyst"] as const;

export default function Users() {
  const { t } = useTranslation();
  const me = useSession();
  const queryClient = useQueryClient();
  const users = useQuery({ queryKey: ["users"], queryFn: () => call(api.GET("/v1/clarion/users")) });
  const [username, setUsername] = useState("");
  const [role, setRole] = useState<string>("marketer");
  const refresh = () => queryClient.invalidateQueries({ queryKey: ["users"] });
  const create = useMutation({
    mutationFn: () => call(api.POST("/v1/clarion/users", { body: { Username: username, Role: role } })),
    onSuccess: () => {
      setUsername("");
      void refresh();
    },
  });
  const update = useMutation({
    mutationFn: ({ name, role, reset }: { name: string; role?: string; reset?: boolean }) =>
      call(
        api.PUT("/v1/clarion/users/{username}", {
          params: { path: { username: name } },
          body: { Role: role, ResetPassword: reset || undefined },
        }),
      ),
    onSuccess: () => void refresh(),
  });
  const remove = useMutation({
    mutationFn: (name: string) =>
      call(api.DELETE("/v1/clarion/users/{username}", { params: { path: { username: name } } })),
    onSuccess: () => void refresh(),
  });
  const submit = (event: FormEvent) => {
    event.preventDefault();
    create.mutate();
  };
  return (
    <Stack>
      <Title order={2}>{t("users.title")}</Title>
      <Group component="form" onSubmit={submit} align="end">
        <TextInput label={t("users.username")} value={username} onChange={(e) => setUsername(e.currentTarget.value)} required />
        <Select
          label={t("users.role")}
          data={ROLES.map((value) => ({ value, label: t(`role.${value}`) }))}
          value={role}
          onChange={(value) => value && setRole(value)}
          allowDeselect={false}
        />
        <Button type="submit" loading={create.isPending}>
          {t("users.create")}
        </Button>
      </Group>
      {create.error && <Failure error={create.error} />}
      {create.data?.Password && (
        <Alert color="blue" data-testid="new-password">
          {t("users.passwordOnce", { username: create.data.Username })} <Code>{create.data.Password}</Code>
        </Alert>
      )}
      {update.data?.Password && (
        <Alert color="blue" data-testid="reset-password">
          {t("users.passwordReset", { username: update.data.Username })} <Code>{update.data.Password}</Code>
        </Alert>
      )}
      {update.error && <Failure error={update.error} />}
      {remove.error && <Failure error={remove.error} />}
      <QueryState query={users} isEmpty={(data) => data.Item.length === 0} empty={t("users.empty")}>
        {(data) => (
          <Table striped data-testid="users">
            <Table.Thead>
              <Table.Tr>
                <Table.Th>{t("users.username")}</Table.Th>
                <Table.Th>{t("users.role")}</Table.Th>
                <Table.Th>{t("common.created")}</Table.Th>
                <Table.Th />
              </Table.Tr>
            </Table.Thead>
            <Table.Tbody>
              {data.Item.map((user) => (
                <Table.Tr key={user.Username}>
                  <Table.Td>{user.Username}</Table.Td>
                  <Table.Td>
                    {user.Username === me.Username ? (
                      t(`role.${user.Role}`)
                    ) : (
                      <Select
                        aria-label={t("users.roleOf", { username: user.Username })}
                        data={ROLES.map((value) => ({ value, label: t(`role.${value}`) }))}
                        value={user.Role}
                        onChange={(value) => value && value !== user.Role && update.mutate({ name: user.Username, role: value })}
                        allowDeselect={false}
                        size="xs"
                        w={140}
                      />
                    )}
                  </Table.Td>
                  <Table.Td>{formatDate(user.CreationDate)}</Table.Td>
                  <Table.Td>
                    {user.Username !== me.Username && (
                      <Group gap="xs">
                        <Button size="xs" variant="subtle" onClick={() => update.mutate({ name: user.Username, reset: true })}>
                          {t("users.resetPassword")}
                        </Button>
                        <Button size="xs" variant="subtle" color="red" onClick={() => remove.mutate(user.Username)}>
                          {t("common.delete")}
                        </Button>
                      </Group>
                    )}
                  </Table.Td>
                </Table.Tr>
              ))}
            </Table.Tbody>
          </Table>
        )}
      </QueryState>
    </Stack>
  );
}
