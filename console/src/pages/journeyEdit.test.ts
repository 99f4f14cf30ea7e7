import { describe, expect, it } from "vitest";
import { connect, newActivity, remove, writeRequest } from "./journeyEdit";

const email = newActivity({ kind: "EMAIL", description: "Welcome", templateName: "welcome", waitFor: "", percentage: 0 });
const wait = newActivity({ kind: "Wait", description: "", templateName: "", waitFor: "PT1H", percentage: 0 });

describe("journey edits", () => {
  it("makes activities of each kind", () => {
    expect(email).toEqual({ Description: "Welcome", EMAIL: { TemplateName: "welcome" } });
    expect(wait).toEqual({ Description: undefined, Wait: { WaitTime: { WaitFor: "PT1H" } } });
  });
  it("connects an activity's one way out, and cuts the ways into a removed one", () => {
    const joined = connect({ welcome: email, pause: wait }, "welcome", "pause");
    expect(joined.welcome.EMAIL?.NextActivity).toBe("pause");
    expect(connect(joined, "welcome", "welcome")).toBe(joined);
    expect(remove(joined, "pause")).toEqual({ welcome: { Description: "Welcome", EMAIL: { TemplateName: "welcome", NextActivity: undefined } } });
  });
  it("writes the journey back with its edits and only writable members", () => {
    const journey = { Id: "j", ApplicationId: "a", Name: "Onboarding", State: "DRAFT", StartCondition: { SegmentStartCondition: { SegmentId: "s" } } };
    expect(writeRequest(journey as never, { welcome: email }, "welcome", "ACTIVE")).toEqual({
      Name: "Onboarding",
      StartCondition: { SegmentStartCondition: { SegmentId: "s" } },
      Activities: { welcome: email },
      StartActivity: "welcome",
      State: "ACTIVE",
    });
  });
});
