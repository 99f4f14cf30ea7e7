import { describe, expect, it } from "vitest";
import { activityKind, journeyGraph, slots } from "./graph";

describe("a journey's graph", () => {
  const activities = {
    welcome: { EMAIL: { NextActivity: "wait" } },
    wait: { Wait: { WaitTime: { WaitFor: "P1D" }, NextActivity: "opened" } },
    opened: { ConditionalSplit: { TrueActivity: "thanks", FalseActivity: "split" } },
    split: { RandomSplit: { Branches: [{ Percentage: 40, NextActivity: "sms" }, { Percentage: 60 }] } },
    thanks: { EMAIL: {} },
    sms: { SMS: { NextActivity: "missing" } },
    orphan: { Holdout: { Percentage: 10 } },
  };
  it("lays activities out in columns by distance from the start, unreached ones last", () => {
    const { nodes } = journeyGraph(activities, "welcome");
    expect(nodes.map((n) => [n.id, n.kind, n.column, n.row])).toEqual([
      ["welcome", "EMAIL", 0, 0],
      ["wait", "Wait", 1, 0],
      ["opened", "ConditionalSplit", 2, 0],
      ["split", "RandomSplit", 3, 0],
      ["thanks", "EMAIL", 3, 1],
      ["sms", "SMS", 4, 0],
      ["orphan", "Holdout", 5, 0],
    ]);
  });
  it("draws every way out to an activity that exists, named when there are several", () => {
    const { edges } = journeyGraph(activities, "welcome");
    expect(edges).toEqual([
      { source: "welcome", slot: "next", target: "wait", label: undefined },
      { source: "wait", slot: "next", target: "opened", label: undefined },
      { source: "opened", slot: "yes", target: "thanks", label: "yes" },
      { source: "opened", slot: "no", target: "split", label: "no" },
      { source: "split", slot: "branch0", target: "sms", label: "40%" },
    ]);
  });
  it("lists every way out of an activity, set or not, as a slot", () => {
    expect(slots(activities.split)).toEqual([
      { slot: "branch0", target: "sms", label: "40%" },
      { slot: "branch1", target: undefined, label: "60%" },
    ]);
    const multi = { MultiCondition: { Branches: [{ NextActivity: "a" }], DefaultActivity: "b" } };
    expect(slots(multi).map(({ slot, target }) => [slot, target])).toEqual([
      ["branch0", "a"],
      ["else", "b"],
    ]);
    expect(slots({ ContactCenter: {} })).toEqual([{ slot: "next", target: undefined }]);
  });
  it("knows an activity with no type", () => {
    expect(activityKind({ Description: "empty" })).toBe("");
  });
});
