// A list read page by page with a "Load more" button, as every paged page of the console shows it.
import { Button, TextInput } from "@mantine/core";
import { useInfiniteQuery, type QueryKey } from "@tanstack/react-query";
import { useTranslation } from "react-i18next";
import { pageItems, pagedQuery, type Page } from "../api/paging";

/** The list's items so far, in the shape QueryState takes, and what the "Load more" button needs; `refreshEvery`
 * polls the pages read so far while it answers a number of milliseconds (lists of running jobs). */
export function usePaged<P extends Page<unknown>>(
  queryKey: QueryKey,
  fetchPage: (token: string | undefined) => Promise<P>,
  refreshEvery?: (pages: P[]) => number | false,
) {
  const pages = useInfiniteQuery(pagedQuery(queryKey, fetchPage, refreshEvery));
  return {
    state: { isPending: pages.isPending, error: pages.error, data: pageItems(pages.data?.pages) },
    hasMore: pages.hasNextPage,
    loadingMore: pages.isFetchingNextPage,
    loadMore: () => void pages.fetchNextPage(),
  };
}

/** The button that reads the next page, shown while there is one. */
export function LoadMore({ paged }: { paged: Pick<ReturnType<typeof usePaged>, "hasMore" | "loadingMore" | "loadMore"> }) {
  const { t } = useTranslation();
  if (!paged.hasMore) return null;
  return (
    <Button variant="light" onClick={paged.loadMore} loading={paged.loadingMore}>
      {t("common.more")}
    </Button>
  );
}

/** The search over a list's items read so far (searching the server is each page's own business). */
export function SearchBox({ value, onChange }: { value: string; onChange: (value: string) => void }) {
  const { t } = useTranslation();
  return <TextInput placeholder={t("common.search")} aria-label={t("common.search")} value={value} onChange={(e) => onChange(e.currentTarget.value)} maw={320} />;
}
