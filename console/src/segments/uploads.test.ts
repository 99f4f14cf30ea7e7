import { describe, expect, it } from "vitest";
import { uploadName } from "./uploads";

describe("uploadName", () => {
  it("keeps plain names as they are", () => {
    expect(uploadName("people-2026_03.csv")).toBe("people-2026_03.csv");
  });
  it("replaces what a file path should not hold, and a leading dot or dash", () => {
    expect(uploadName("../My list (1).CSV")).toBe("My-list--1-.csv");
    expect(uploadName("고객 목록.jsonl")).toBe("upload.jsonl");
  });
  it("keeps the end of a long name, and its extension", () => {
    expect(uploadName(`${"a".repeat(300)}b.ndjson`)).toBe(`${"a".repeat(89)}b.ndjson`);
  });
});
