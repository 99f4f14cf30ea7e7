import { Stack, Table, Title } from "@mantine/core";
import { useTranslation } from "react-i18next";
import { api, call } from "../api/client";
import { LoadMore, usePaged } from "../components/Paged";
import { QueryState } from "../components/States";
import { formatDate } from "../i18n";

export default function Audit() {
  const { t } = useTranslation();
  const events = usePaged(["audit"], (token) =>
    call(api.GET("/v1/clarion/audit-events", { params: { query: { "page-size": "50", token } } })),
  );
  return (
    <Stack>
      <Title order={2}>{t("audit.title")}</Title>
      <QueryState query={events.state} isEmpty={(items) => items.length === 0} empty={t("audit.empty")}>
        {(items) => (
          <Table striped data-testid="audit">
            <Table.Thead>
              <Table.Tr>
                <Table.Th>{t("audit.date")}</Table.Th>
                <Table.Th>{t("audit.user")}</Table.Th>
                <Table.Th>{t("audit.action")}</Table.Th>
                <Table.Th>{t("audit.target")}</Table.Th>
                <Table.Th>{t("audit.status")}</Table.Th>
              </Table.Tr>
            </Table.Thead>
            <Table.Tbody>
              {items.map((event) => (
                <Table.Tr key={event.RequestId + event.Action}>
                  <Table.Td>{formatDate(event.Date)}</Table.Td>
                  <Table.Td>{event.Username}</Table.Td>
                  <Table.Td>{event.Action}</Table.Td>
                  <Table.Td>{event.Target}</Table.Td>
                  <Table.Td>{event.Status}</Table.Td>
                </Table.Tr>
              ))}
            </Table.Tbody>
          </Table>
        )}
      </QueryState>
      <LoadMore paged={events} />
    </Stack>
  );
}
