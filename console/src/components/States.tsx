// The three states every page shows besides its content: loading, nothing yet, and a refusal or failure.
import { Alert, Center, Loader, Stack, Text } from "@mantine/core";
import type { ReactNode } from "react";
import { useTranslation } from "react-i18next";

export function Loading() {
  const { t } = useTranslation();
  return (
    <Center p="xl" aria-busy="true">
      <Loader size="sm" aria-label={t("state.loading")} />
    </Center>
  );
}

export function Empty({ children }: { children: ReactNode }) {
  return (
    <Stack align="center" p="xl" data-testid="empty">
      <Text c="dimmed">{children}</Text>
    </Stack>
  );
}

export function Failure({ error }: { error: unknown }) {
  const { t } = useTranslation();
  const message = error instanceof Error ? error.message : String(error);
  return (
    <Alert color="red" title={t("state.failed")} role="alert">
      {/* The server's own message, in English: marked so, for screen readers and the translation check. */}
      <span lang="en">{message}</span>
    </Alert>
  );
}

/** Loading, failure, empty or the content, for one query. */
export function QueryState<T>({
  query,
  empty,
  isEmpty,
  children,
}: {
  query: { isPending: boolean; error: unknown; data: T | undefined };
  empty: ReactNode;
  isEmpty: (data: T) => boolean;
  children: (data: T) => ReactNode;
}) {
  if (query.isPending) return <Loading />;
  if (query.error) return <Failure error={query.error} />;
  const data = query.data as T;
  if (isEmpty(data)) return <Empty>{empty}</Empty>;
  return <>{children(data)}</>;
}
