// Lists that page with the API's NextToken: the query options every "Load more" list shares, the items of the
// pages read so far, and the search over them. Pinpoint answers the last page without a NextToken (or an empty one).
import { infiniteQueryOptions, type QueryKey } from "@tanstack/react-query";

export interface Page<T> {
  Item?: T[] | null;
  NextToken?: string | null;
}

/** The infinite query of a list: the first page without a token, each next one with the token the last answered;
 * `refreshEvery` reads the pages again while it answers a number of milliseconds. */
export function pagedQuery<P extends Page<unknown>>(
  queryKey: QueryKey,
  fetchPage: (token: string | undefined) => Promise<P>,
  refreshEvery?: (pages: P[]) => number | false,
) {
  return infiniteQueryOptions({
    queryKey,
    queryFn: ({ pageParam }) => fetchPage(pageParam),
    initialPageParam: undefined as string | undefined,
    getNextPageParam: (page: P) => page.NextToken || undefined,
    refetchInterval: refreshEvery && ((query) => refreshEvery(query.state.data?.pages ?? [])),
  });
}

/** Every item of the pages read so far, in order (undefined before the first page). */
export function pageItems<P extends Page<unknown>>(pages: P[] | undefined): NonNullable<P["Item"]> | undefined {
  return pages?.flatMap((page) => page.Item ?? []) as NonNullable<P["Item"]> | undefined;
}

/** Whether an item's text holds the search, ignoring case. */
export function matching<T>(search: string, text: (item: T) => string): (item: T) => boolean {
  const wanted = search.toLowerCase();
  return (item) => text(item).toLowerCase().includes(wanted);
}
