import { InfiniteQueryObserver, QueryClient } from "@tanstack/react-query";
import { describe, expect, it } from "vitest";
import { matching, pageItems, pagedQuery, type Page } from "./paging";

/** A list of `size` names answered `pageSize` at a time, the token being the next index, as the API pages. */
function source(size: number, pageSize: number, last: (page: Page<string>) => Page<string> = (page) => page) {
  const tokens: (string | undefined)[] = [];
  const fetchPage = async (token: string | undefined): Promise<Page<string>> => {
    tokens.push(token);
    const start = Number(token ?? 0);
    const Item = Array.from({ length: Math.min(pageSize, size - start) }, (_, n) => `item-${start + n}`);
    const next = start + pageSize < size ? String(start + pageSize) : undefined;
    return next ? { Item, NextToken: next } : last({ Item });
  };
  return { fetchPage, tokens };
}

async function readAll(fetchPage: (token: string | undefined) => Promise<Page<string>>) {
  const client = new QueryClient();
  const observer = new InfiniteQueryObserver(client, pagedQuery(["list"], fetchPage));
  await observer.refetch();
  let result = observer.getCurrentResult();
  const seen = [pageItems(result.data?.pages)?.length];
  while (result.hasNextPage) {
    result = await observer.fetchNextPage();
    seen.push(pageItems(result.data?.pages)?.length);
  }
  return { items: pageItems(result.data?.pages), seen };
}

describe("paged lists", () => {
  it("reads page after page with the token each answered, until one answers none", async () => {
    const { fetchPage, tokens } = source(5, 2);
    const { items, seen } = await readAll(fetchPage);
    expect(tokens).toEqual([undefined, "2", "4"]);
    expect(seen).toEqual([2, 4, 5]);
    expect(items).toEqual(["item-0", "item-1", "item-2", "item-3", "item-4"]);
  });

  it("ends on an empty or null NextToken, and counts a page without items as empty", async () => {
    for (const end of ["", null]) {
      const { fetchPage, tokens } = source(3, 2, (page) => ({ ...page, NextToken: end }));
      expect((await readAll(fetchPage)).items).toEqual(["item-0", "item-1", "item-2"]);
      expect(tokens).toEqual([undefined, "2"]);
    }
    expect(pageItems([{ Item: ["a"] }, { NextToken: null }, { Item: null }])).toEqual(["a"]);
    expect(pageItems(undefined)).toBeUndefined();
  });
});

describe("searching the items read", () => {
  it("keeps the items whose text holds the search, ignoring case", () => {
    const apps = [{ Name: "Newsletter", Id: "a1" }, { Name: "Shop", Id: "B2" }];
    expect(apps.filter(matching("news", (app) => `${app.Name} ${app.Id}`))).toEqual([apps[0]]);
    expect(apps.filter(matching("b2", (app) => `${app.Name} ${app.Id}`))).toEqual([apps[1]]);
    expect(apps.filter(matching("", (app) => app.Name))).toEqual(apps);
  });
});
