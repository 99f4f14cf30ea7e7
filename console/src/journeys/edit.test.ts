import { describe, expect, it } from "vitest";
import { connect, newActivity, patchBody, remove, writeRequest } from "./edit";
import { KINDS, activityKind, type Activity } from "./graph";

const email = patchBody(newActivity("EMAIL", "Welcome"), { TemplateName: "welcome" });
const wait = newActivity("Wait", "");

describe("journey edits", () => {
  it("makes an activity of every kind, with a start that reads", () => {
    for (const kind of KINDS) expect(activityKind(newActivity(kind, ""))).toBe(kind);
    expect(email).toEqual({ Description: "Welcome", EMAIL: { TemplateName: "welcome" } });
    expect(wait).toEqual({ Description: undefined, Wait: { WaitTime: { WaitFor: "PT1H" } } });
    expect(newActivity("RandomSplit", "").RandomSplit?.Branches).toEqual([{ Percentage: 50 }, { Percentage: 50 }]);
  });

  it("connects an activity's one way out, and cuts the ways into a removed one", () => {
    const joined = connect({ welcome: email, pause: wait }, "welcome", "pause");
    expect(joined.welcome.EMAIL?.NextActivity).toBe("pause");
    expect(connect(joined, "welcome", "welcome")).toBe(joined);
    expect(remove(joined, "pause")).toEqual({ welcome: { Description: "Welcome", EMAIL: { TemplateName: "welcome", NextActivity: undefined } } });
  });

  it("connects each way out of a split by its slot, and ignores a slot the activity does not have", () => {
    let activities: Record<string, Activity> = { split: newActivity("ConditionalSplit", ""), random: newActivity("RandomSplit", ""), multi: newActivity("MultiCondition", ""), a: email, b: wait };
    activities = connect(activities, "split", "a", "yes");
    activities = connect(activities, "split", "b", "no");
    activities = connect(activities, "random", "b", "branch1");
    activities = connect(activities, "multi", "a", "branch0");
    activities = connect(activities, "multi", "b", "else");
    expect(activities.split.ConditionalSplit).toMatchObject({ TrueActivity: "a", FalseActivity: "b" });
    expect(activities.random.RandomSplit?.Branches).toEqual([{ Percentage: 50 }, { Percentage: 50, NextActivity: "b" }]);
    expect(activities.multi.MultiCondition).toMatchObject({ Branches: [{ Condition: {}, NextActivity: "a" }], DefaultActivity: "b" });
    expect(connect(activities, "split", "a", "next")).toBe(activities);
    expect(connect(activities, "random", "a", "branch7")).toBe(activities);

    const rest = remove(activities, "b");
    expect(rest.split.ConditionalSplit).toMatchObject({ TrueActivity: "a", FalseActivity: undefined });
    expect(rest.random.RandomSplit?.Branches?.[1].NextActivity).toBeUndefined();
    expect(rest.multi.MultiCondition).toMatchObject({ DefaultActivity: undefined });
  });

  it("writes the journey back with its edits, settings and the positions of activities that exist", () => {
    const journey = {
      Id: "j",
      ApplicationId: "a",
      Name: "Onboarding",
      State: "DRAFT",
      StartCondition: { SegmentStartCondition: { SegmentId: "s" } },
      Limits: { DailyCap: 3 },
      RefreshFrequency: "PT1H",
    } as const;
    const positions = { welcome: { X: 10, Y: 20 }, gone: { X: 0, Y: 0 } };
    const settings = { Limits: { TotalCap: 5 }, RefreshFrequency: undefined };
    expect(writeRequest(journey as never, { activities: { welcome: email }, start: "welcome", settings, positions }, "ACTIVE")).toEqual({
      Name: "Onboarding",
      StartCondition: { SegmentStartCondition: { SegmentId: "s" } },
      Limits: { TotalCap: 5 },
      Activities: { welcome: email },
      StartActivity: "welcome",
      ClarionCanvas: { Positions: { welcome: { X: 10, Y: 20 } } },
      State: "ACTIVE",
    });
  });
});
