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

describe("contentReady", () => {
  it("needs something to say on every chosen channel", () => {
    expect(contentReady(["EMAIL", "SMS"], { ...EMPTY_CONTENT, emailTemplate: "t" }, "")).toBe(false);
    expect(contentReady(["EMAIL", "SMS"], { ...EMPTY_CONTENT, emailTemplate: "t", smsBody: "b" }, "")).toBe(true);
    expect(contentReady(["CUSTOM"], EMPTY_CONTENT, "")).toBe(false);
  });
});
