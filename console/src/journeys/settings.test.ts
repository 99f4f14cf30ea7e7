import { describe, expect, it } from "vitest";
import { errorActivity, errorPath, isAbout, settingsField } from "./errors";
import { settingsDraft, settingsMembers } from "./settings";

describe("journey settings", () => {
  it("reads a journey's settings into the form and writes them back as they were", () => {
    const journey = {
      Schedule: { StartTime: "2030-01-01T09:00:00+00:00", EndTime: "2030-02-01T09:00:00+00:00", Timezone: "UTC+09" },
      LocalTime: true,
      QuietTime: { Start: "22:00", End: "08:00" },
      WaitForQuietTime: true,
      Limits: { DailyCap: 2, TotalCap: 10, EndpointReentryCap: 1, MessagesPerSecond: 50, TimeframeCap: { Cap: 3, Days: 7 }, EndpointReentryInterval: "P1D" },
      RefreshFrequency: "PT6H",
      RefreshOnSegmentUpdate: true,
      JourneyChannelSettings: { ConnectCampaignArn: "arn:aws:connect:eu-west-1:1:instance/i/campaign/c", ConnectCampaignExecutionRoleArn: "arn:aws:iam::1:role/r" },
    };
    const draft = settingsDraft(journey);
    expect(draft.limits).toEqual({ DailyCap: 2, TotalCap: 10, EndpointReentryCap: 1, MessagesPerSecond: 50 });
    expect(settingsMembers(draft)).toEqual(journey);
  });

  it("reads and writes both ways in: a segment's members, or an app event (of the segment's members, or anyone's)", () => {
    const bySegment = { StartCondition: { SegmentStartCondition: { SegmentId: "s1" } } };
    expect(settingsMembers(settingsDraft(bySegment)).StartCondition).toEqual(bySegment.StartCondition);
    const filter = { FilterType: "ENDPOINT" as const, Dimensions: { EventType: { DimensionType: "INCLUSIVE" as const, Values: ["purchase"] } } };
    const byEvent = { StartCondition: { EventStartCondition: { EventFilter: filter, SegmentId: "s1" } } };
    const draft = settingsDraft(byEvent);
    expect([draft.entry, draft.eventType, draft.segmentId]).toEqual(["event", "purchase", "s1"]);
    expect(settingsMembers(draft).StartCondition).toEqual(byEvent.StartCondition);
    const described = { StartCondition: { ...byEvent.StartCondition, Description: "buyers" } };
    expect(settingsMembers(settingsDraft(described)).StartCondition).toBe(described.StartCondition);
    expect(settingsMembers({ ...draft, segmentId: null }).StartCondition).toEqual({ EventStartCondition: { EventFilter: filter, SegmentId: undefined } });
  });

  it("leaves out what the form leaves empty, so UpdateJourney removes it", () => {
    const members = settingsMembers({ ...settingsDraft({}), quietStart: "22:00", timeframeDays: 7 });
    expect(settingsDraft({}).readStart).toBeUndefined();
    expect(members).toEqual({
      StartCondition: undefined,
      Schedule: undefined,
      LocalTime: undefined,
      QuietTime: { Start: "22:00", End: undefined },
      WaitForQuietTime: undefined,
      Limits: { DailyCap: undefined, TotalCap: undefined, EndpointReentryCap: undefined, MessagesPerSecond: undefined, EndpointReentryInterval: undefined, TimeframeCap: { Cap: undefined, Days: 7 } },
      RefreshFrequency: undefined,
      RefreshOnSegmentUpdate: undefined,
      JourneyChannelSettings: undefined,
    });
    expect(Object.keys(members)).toContain("RefreshFrequency"); // present, so it replaces what was read
  });
});

describe("where a refusal is shown", () => {
  it("finds the member the server's message names", () => {
    expect(errorPath("Limits.DailyCap must be between 0 and 100, not 500")).toBe("Limits.DailyCap");
    expect(errorPath("Activities.split.ConditionalSplit.Condition.Conditions[0].EventCondition.MessageActivity: 'x' is not")).toBe(
      "Activities.split.ConditionalSplit.Condition.Conditions[0].EventCondition.MessageActivity",
    );
    expect(errorPath("QuietTime needs both Start and End")).toBe("QuietTime");
    expect(errorPath("'x' is wrong")).toBe("");
  });
  it("puts it on the field of that member, in the activity it names", () => {
    const message = "Activities.pause.Wait.WaitTime.WaitFor: 'soon' is not an ISO 8601 duration";
    expect(isAbout(message, "Activities.pause.Wait.WaitTime")).toBe(true);
    expect(isAbout(message, "Activities.pause.Wait.Wait")).toBe(false);
    expect(isAbout("Activities.s.ConditionalSplit.Condition.Conditions[1] needs exactly one", "Activities.s.ConditionalSplit.Condition.Conditions[1]")).toBe(true);
    expect(errorActivity(message, ["pause", "welcome"])).toBe("pause");
    expect(errorActivity(message, ["welcome"])).toBeUndefined();
    expect(errorActivity("Activities holds at most 40 activities, not 41", ["pause"])).toBeUndefined();
    expect(settingsField("Limits.TimeframeCap.Days must be between 0 and 30, not 31")).toBe("timeframeDays");
    expect(settingsField("QuietTime needs both Start and End")).toBe("quietStart");
    expect(settingsField("RefreshFrequency: 'x' is not an ISO 8601 duration (for example PT1H or P1D)")).toBe("refreshFrequency");
    expect(settingsField("StartCondition is required to make a journey ACTIVE")).toBe("entry");
    expect(settingsField("StartCondition.EventStartCondition.EventFilter.Dimensions.EventType.Values must name exactly one event")).toBe("eventType");
    expect(settingsField("State: a journey is written as DRAFT or ACTIVE, not PAUSED")).toBeUndefined();
  });
});
