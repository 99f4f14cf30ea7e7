// The campaign wizard's answers and the CreateCampaign request they make: messages on several channels (inline or
// templates, in-app included), A/B treatments, holdout, limits, the custom channel's webhook and endpoint types, a
// campaign hook, and ClarionChannelOrder (reach each person once, on the first channel of the order they can
// receive). Campaigns do not send voice (the server refuses a VoiceTemplate), so the wizard does not offer it.
import { requestBody, type Fields } from "../templates/api";

export const CHANNELS = ["EMAIL", "SMS", "PUSH", "IN_APP", "CUSTOM"] as const;
export type Channel = (typeof CHANNELS)[number];
/** The channels a message is sent on, which ClarionChannelOrder may order; in-app messages wait for the app. */
const SENDING: readonly Channel[] = ["EMAIL", "SMS", "PUSH", "CUSTOM"];
export const ENDPOINT_TYPES = ["EMAIL", "SMS", "VOICE", "PUSH", "GCM", "APNS", "APNS_SANDBOX", "APNS_VOIP", "APNS_VOIP_SANDBOX", "ADM", "BAIDU", "IN_APP", "CUSTOM"] as const;
export type EndpointType = (typeof ENDPOINT_TYPES)[number];

/** What one treatment says on each channel; a template name, when given, replaces the inline parts. */
export interface Content {
  emailTemplate: string | null;
  subject: string;
  html: string;
  fromAddress: string;
  smsTemplate: string | null;
  smsBody: string;
  smsType: "PROMOTIONAL" | "TRANSACTIONAL";
  pushTemplate: string | null;
  pushTitle: string;
  pushBody: string;
  pushUrl: string;
  inAppTemplate: string | null;
  /** The in-app message as the template editor's fields (Layout, Header, Body, colours, image, button). */
  inApp: Fields;
  customData: string;
}

export interface Treatment {
  name: string;
  sizePercent: number;
  content: Content;
}

export interface Draft {
  name: string;
  segmentId: string | null;
  channels: Channel[]; // in the order chosen: the fallback order when `fallback` is on
  fallback: boolean;
  customUri: string;
  customTypes: EndpointType[]; // the endpoint types the custom webhook is for; none: every type
  content: Content;
  treatments: Treatment[]; // the additional ones (B, C, ...); the default treatment gets the rest
  when: "now" | "later";
  startTime: string;
  localTime: boolean;
  quietStart: string;
  quietEnd: string;
  inAppEvent: string; // in-app: the app event that shows the message (Frequency IN_APP_EVENT); empty: at the start
  holdout: number;
  dailyLimit: number | "";
  hookMode: "" | "FILTER" | "DELIVERY";
  hookUrl: string;
  hookLambda: string;
}

export const EMPTY_CONTENT: Content = {
  emailTemplate: null,
  subject: "",
  html: "",
  fromAddress: "",
  smsTemplate: null,
  smsBody: "",
  smsType: "PROMOTIONAL",
  pushTemplate: null,
  pushTitle: "",
  pushBody: "",
  pushUrl: "",
  inAppTemplate: null,
  inApp: { Layout: "MIDDLE_BANNER" },
  customData: "",
};

export const EMPTY: Draft = {
  name: "",
  segmentId: null,
  channels: ["EMAIL"],
  fallback: false,
  customUri: "",
  customTypes: [],
  content: EMPTY_CONTENT,
  treatments: [],
  when: "now",
  startTime: "",
  localTime: false,
  quietStart: "",
  quietEnd: "",
  inAppEvent: "",
  holdout: 0,
  dailyLimit: "",
  hookMode: "",
  hookUrl: "",
  hookLambda: "",
};

/** Whether a treatment says something on every chosen channel. */
export function contentReady(channels: Channel[], content: Content, customUri: string): boolean {
  return channels.every((channel) => {
    switch (channel) {
      case "EMAIL":
        return Boolean(content.emailTemplate || (content.subject && content.html));
      case "SMS":
        return Boolean(content.smsTemplate || content.smsBody);
      case "PUSH":
        return Boolean(content.pushTemplate || content.pushBody);
      case "IN_APP":
        return Boolean(content.inAppTemplate || content.inApp.Header || content.inApp.Body);
      case "CUSTOM":
        return Boolean(customUri);
    }
  });
}

/** The percent of the audience the default treatment gets (what holdout and the other treatments leave). */
export function defaultShare(draft: Draft): number {
  return 100 - draft.holdout - draft.treatments.reduce((sum, treatment) => sum + treatment.sizePercent, 0);
}

/** MessageConfiguration and TemplateConfiguration of one treatment on the chosen channels. */
export function messages(channels: Channel[], content: Content) {
  const message: Record<string, unknown> = {};
  const templates: Record<string, { Name: string }> = {};
  // One message for each channel: a template when one is chosen, else what was written here.
  const push = {
    Title: content.pushTitle || undefined,
    Body: content.pushBody,
    Action: content.pushUrl ? "URL" : "OPEN_APP",
    Url: content.pushUrl || undefined,
  };
  for (const channel of channels) {
    if (channel === "EMAIL") {
      if (content.emailTemplate) templates.EmailTemplate = { Name: content.emailTemplate };
      else message.EmailMessage = { Title: content.subject, HtmlBody: content.html, FromAddress: content.fromAddress || undefined };
    } else if (channel === "SMS") {
      if (content.smsTemplate) templates.SMSTemplate = { Name: content.smsTemplate };
      else message.SMSMessage = { Body: content.smsBody, MessageType: content.smsType };
    } else if (channel === "PUSH") {
      if (content.pushTemplate) templates.PushTemplate = { Name: content.pushTemplate };
      else Object.assign(message, { GCMMessage: push, APNSMessage: push });
    } else if (channel === "IN_APP") {
      if (content.inAppTemplate) templates.InAppTemplate = { Name: content.inAppTemplate };
      else message.InAppMessage = requestBody("INAPP", content.inApp);
    } else if (content.customData) {
      message.CustomMessage = { Data: content.customData };
    }
  }
  return {
    ...(Object.keys(message).length ? { MessageConfiguration: message } : {}),
    ...(Object.keys(templates).length ? { TemplateConfiguration: templates } : {}),
  };
}

/** The channel types ClarionChannelOrder names for the chosen channels (push: Android's, then Apple's). */
export function channelOrder(channels: Channel[]): ("GCM" | "APNS" | Exclude<Channel, "PUSH" | "IN_APP">)[] {
  return sendingChannels(channels).flatMap((channel) => (channel === "PUSH" ? (["GCM", "APNS"] as const) : [channel as Exclude<Channel, "PUSH" | "IN_APP">]));
}

/** The chosen channels that send (all but in-app), in the order chosen. */
export function sendingChannels(channels: Channel[]): Channel[] {
  return channels.filter((channel) => SENDING.includes(channel));
}

/** The campaign's schedule: once (now or at a set time), or, for an in-app message with a trigger, whenever the app
 *  reports that event from the start on (IN_APP_EVENT cannot start IMMEDIATE, so "now" is this moment). */
function schedule(draft: Draft, now: Date) {
  const quiet = draft.quietStart && draft.quietEnd ? { QuietTime: { Start: draft.quietStart, End: draft.quietEnd } } : {};
  const triggered = draft.channels.includes("IN_APP") && draft.inAppEvent.trim() !== "";
  const start = draft.when === "later" ? draft.startTime : triggered ? now.toISOString() : "IMMEDIATE";
  const trigger = triggered
    ? { EventFilter: { FilterType: "ENDPOINT" as const, Dimensions: { EventType: { DimensionType: "INCLUSIVE" as const, Values: [draft.inAppEvent.trim()] } } } }
    : {};
  return { StartTime: start, Frequency: triggered ? ("IN_APP_EVENT" as const) : ("ONCE" as const), IsLocalTime: draft.localTime || undefined, ...quiet, ...trigger };
}

/** The CreateCampaign request the wizard's answers make (`now`: when "now" is, for an in-app trigger). */
export function request(draft: Draft, now = new Date()) {
  const custom = draft.channels.includes("CUSTOM")
    ? { CustomDeliveryConfiguration: { DeliveryUri: draft.customUri, EndpointTypes: draft.customTypes.length ? draft.customTypes : undefined } }
    : {};
  const hook = draft.hookMode
    ? { Hook: { Mode: draft.hookMode, WebUrl: draft.hookUrl.trim() || undefined, LambdaFunctionName: draft.hookLambda.trim() || undefined } }
    : {};
  return {
    Name: draft.name,
    SegmentId: draft.segmentId ?? "",
    HoldoutPercent: draft.holdout || undefined,
    Limits: draft.dailyLimit ? { Daily: Number(draft.dailyLimit) } : undefined,
    Schedule: schedule(draft, now),
    ...hook,
    ...messages(draft.channels, draft.content),
    ...custom,
    ...(draft.treatments.length
      ? {
          TreatmentName: "A",
          AdditionalTreatments: draft.treatments.map((treatment) => ({
            TreatmentName: treatment.name,
            SizePercent: treatment.sizePercent,
            ...messages(draft.channels, treatment.content),
            ...custom,
          })),
        }
      : {}),
    ...(draft.fallback && sendingChannels(draft.channels).length > 1 ? { ClarionChannelOrder: channelOrder(draft.channels) } : {}),
  };
}
