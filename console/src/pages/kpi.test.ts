import { describe, expect, it } from "vitest";
import { compareBills, recentMonths } from "./costs";
import { joinSeries, lastDays, single } from "./kpi";

const row = (group: string, value: string) => ({
  GroupedBys: [{ Key: "Date", Type: "String", Value: group }],
  Values: [{ Key: "X", Type: "Double", Value: value }],
});

describe("KPI answers", () => {
  it("join grouped series on their group, a missing row counting 0", () => {
    const joined = joinSeries("date", {
      sent: [row("2026-11-02", "3.0"), row("2026-11-01", "1.0")],
      opened: [row("2026-11-02", "2.0")],
      clicked: undefined,
    });
    expect(joined).toEqual([
      { date: "2026-11-01", sent: 1, opened: 0, clicked: 0 },
      { date: "2026-11-02", sent: 3, opened: 2, clicked: 0 },
    ]);
  });
  it("read no rows as 0", () => {
    expect(single([])).toBe(0);
    expect(single([{ GroupedBys: [], Values: [{ Key: "X", Type: "Double", Value: "0.5" }] }])).toBe(0.5);
  });
  it("ask for whole UTC days, today included", () => {
    const range = lastDays(7, new Date("2026-11-30T15:04:05Z"));
    expect(range).toEqual({ start: "2026-11-24T00:00:00.000Z", end: "2026-11-30T15:04:05.000Z" });
  });
});

describe("cost answers", () => {
  it("offer calendar months back across a year", () => {
    expect(recentMonths(3, new Date("2026-02-10T00:00:00Z"))).toEqual(["2026-02", "2026-01", "2025-12"]);
  });
  it("join the two bills on meter and country, unpriced lines as null, unused lines left out", () => {
    const pinpoint = {
      Currency: "USD",
      Total: "0.0003",
      Complete: false,
      Lines: [
        { Meter: "Events", Quantity: 0, UnitPrice: "0.000001", Amount: "0" },
        { Meter: "Email", Quantity: 3, UnitPrice: "0.0001", Amount: "0.0003" },
        { Meter: "SMS", Country: "DE", Quantity: 1, Unpriced: true },
      ],
    };
    const provider = {
      Currency: "EUR",
      Total: "0.0506",
      Complete: true,
      Lines: [
        { Meter: "Email", Quantity: 3, UnitPrice: "0.0002", Amount: "0.0006" },
        { Meter: "Voice", Quantity: 1, UnitPrice: "0.01", Amount: "0.01" },
        { Meter: "SMS", Country: "DE", Quantity: 1, UnitPrice: "0.05", Amount: "0.05" },
      ],
    };
    expect(compareBills(pinpoint, provider)).toEqual([
      { meter: "Email", country: "", quantity: 3, pinpoint: 0.0003, provider: 0.0006 },
      { meter: "SMS", country: "DE", quantity: 1, pinpoint: null, provider: 0.05 },
      { meter: "Voice", country: "", quantity: 1, pinpoint: null, provider: 0.01 },
    ]);
  });
});
