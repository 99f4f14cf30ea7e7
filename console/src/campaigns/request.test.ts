import { describe, expect, it } from "vitest";
import { EMPTY, EMPTY_CONTENT, defaultShare, contentReady, request, type Draft } from "./request";

const base: Draft = { ...EMPTY, name: "Spring", segmentId: "seg-1" };

describe("request", () => {
  it("makes an email campaign as before", () => {
    const made = request({ ...base, content: { ...EMPTY_CONTENT, subject: "Hi", html: "<p>Hi</p>" } });
    expect(made.MessageConfiguration).toEqual({ EmailMessage: { Title: "Hi", HtmlBody: "<p>Hi</p>", FromAddress: undefined } });
    expect(made).not.toHaveProperty("TemplateConfiguration");
    expect(made).not.toHaveProperty("AdditionalTreatments");
    expect(made).not.toHaveProperty("ClarionChannelOrder");
  });

  it("mixes inline messages and templates across channels, with push on Android and Apple", () => {
    const content = { ...EMPTY_CONTENT, smsTemplate: "sms-hello", pushTitle: "Sale", pushBody: "Now on", pushUrl: "https://x.example" };
    const made = request({ ...base, channels: ["PUSH", "SMS"], fallback: true, content });
    const push = { Title: "Sale", Body: "Now on", Action: "URL", Url: "https://x.example" };
    expect(made.MessageConfiguration).toEqual({ GCMMessage: push, APNSMessage: push });
    expect(made.TemplateConfiguration).toEqual({ SMSTemplate: { Name: "sms-hello" } });
    expect(made.ClarionChannelOrder).toEqual(["GCM", "APNS", "SMS"]);
  });

  it("adds treatments with their own messages and leaves the rest to the default one", () => {
    const draft: Draft = {
      ...base,
      channels: ["SMS", "CUSTOM"],
      customUri: "https://hooks.example/deliver",
      holdout: 10,
      content: { ...EMPTY_CONTENT, smsBody: "A text", customData: "a" },
      treatments: [{ name: "B", sizePercent: 30, content: { ...EMPTY_CONTENT, smsBody: "B text" } }],
    };
    const made = request(draft);
    expect(made.TreatmentName).toBe("A");
    expect(made.HoldoutPercent).toBe(10);
    expect(made.CustomDeliveryConfiguration).toEqual({ DeliveryUri: "https://hooks.example/deliver" });
    expect(made.MessageConfiguration).toEqual({ SMSMessage: { Body: "A text", MessageType: "PROMOTIONAL" }, CustomMessage: { Data: "a" } });
    expect(made.AdditionalTreatments).toEqual([
      {
        TreatmentName: "B",
        SizePercent: 30,
        MessageConfiguration: { SMSMessage: { Body: "B text", MessageType: "PROMOTIONAL" } },
        CustomDeliveryConfiguration: { DeliveryUri: "https://hooks.example/deliver" },
      },
    ]);
    expect(defaultShare(draft)).toBe(60);
    expect(made).not.toHaveProperty("ClarionChannelOrder"); // fallback off
  });
});

describe("in-app, custom channel and hook", () => {
  const now = new Date("2030-01-01T09:00:00Z");

  it("sends an in-app message written here or its template, and leaves in-app out of the channel order", () => {
    const inApp = { Layout: "TOP_BANNER", Header: "Sale", Body: "Half price", ButtonText: "Shop", ButtonLink: "https://shop.example" };
    const made = request({ ...base, channels: ["IN_APP", "EMAIL"], fallback: true, content: { ...EMPTY_CONTENT, inApp, emailTemplate: "news" } }, now);
    expect(made.MessageConfiguration).toEqual({
      InAppMessage: {
        Layout: "TOP_BANNER",
        Content: [
          {
            HeaderConfig: { Header: "Sale", Alignment: "CENTER", TextColor: "#000000" },
            BodyConfig: { Body: "Half price", Alignment: "CENTER", TextColor: "#000000" },
            BackgroundColor: undefined,
            ImageUrl: undefined,
            PrimaryBtn: { DefaultConfig: { Text: "Shop", ButtonAction: "LINK", Link: "https://shop.example" } },
          },
        ],
      },
    });
    expect(made).not.toHaveProperty("ClarionChannelOrder"); // one sending channel
    expect(made.Schedule).toMatchObject({ StartTime: "IMMEDIATE", Frequency: "ONCE" });
    const templated = request({ ...base, channels: ["IN_APP"], content: { ...EMPTY_CONTENT, inAppTemplate: "banner" } }, now);
    expect(templated.TemplateConfiguration).toEqual({ InAppTemplate: { Name: "banner" } });
  });

  it("shows an in-app message on the app's event from now on", () => {
    const made = request({ ...base, channels: ["IN_APP"], inAppEvent: " level_up ", content: { ...EMPTY_CONTENT, inAppTemplate: "banner" } }, now);
    expect(made.Schedule).toEqual({
      StartTime: "2030-01-01T09:00:00.000Z",
      Frequency: "IN_APP_EVENT",
      IsLocalTime: undefined,
      EventFilter: { FilterType: "ENDPOINT", Dimensions: { EventType: { DimensionType: "INCLUSIVE", Values: ["level_up"] } } },
    });
    expect(contentReady(["IN_APP"], EMPTY_CONTENT, "")).toBe(false);
  });

  it("limits the custom webhook to endpoint types, for every treatment, and sets a hook", () => {
    const draft: Draft = {
      ...base,
      channels: ["CUSTOM"],
      customUri: "https://hooks.example/deliver",
      customTypes: ["GCM", "APNS"],
      content: { ...EMPTY_CONTENT, customData: "a" },
      treatments: [{ name: "B", sizePercent: 50, content: { ...EMPTY_CONTENT, customData: "b" } }],
      hookMode: "FILTER",
      hookLambda: "pick-endpoints",
    };
    const made = request(draft, now);
    const custom = { DeliveryUri: "https://hooks.example/deliver", EndpointTypes: ["GCM", "APNS"] };
    expect(made.CustomDeliveryConfiguration).toEqual(custom);
    expect(made.AdditionalTreatments?.[0]).toMatchObject({ CustomDeliveryConfiguration: custom, MessageConfiguration: { CustomMessage: { Data: "b" } } });
    expect(made.Hook).toEqual({ Mode: "FILTER", WebUrl: undefined, LambdaFunctionName: "pick-endpoints" });
  });
});

describe("contentReady", () => {
  it("needs something to say on every chosen channel", () => {
    expect(contentReady(["EMAIL", "SMS"], { ...EMPTY_CONTENT, emailTemplate: "t" }, "")).toBe(false);
    expect(contentReady(["EMAIL", "SMS"], { ...EMPTY_CONTENT, emailTemplate: "t", smsBody: "b" }, "")).toBe(true);
    expect(contentReady(["CUSTOM"], EMPTY_CONTENT, "")).toBe(false);
  });
});
