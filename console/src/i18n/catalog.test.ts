import { describe, expect, it } from "vitest";
import { en } from "./en";
import { ko } from "./ko";

const placeholders = (text: string) => [...text.matchAll(/{{(\w+)}}/g)].map((m) => m[1]).sort();

describe("the Korean catalog", () => {
  it("has every English key and no other", () => {
    expect(Object.keys(ko).sort()).toEqual(Object.keys(en).sort());
  });
  it("keeps each message's placeholders", () => {
    for (const [key, text] of Object.entries(en)) {
      expect(placeholders(ko[key as keyof typeof en]), key).toEqual(placeholders(text));
    }
  });
  it("translates every message that is not a name", () => {
    const same = Object.keys(en).filter((key) => ko[key as keyof typeof en] === en[key as keyof typeof en]);
    expect(same).toEqual(["app.name"]);
  });
});
