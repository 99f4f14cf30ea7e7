// The campaign wizard's answers and the CreateCampaign request they make: messages on several channels (inline or
// templates), A/B treatments, holdout, limits and ClarionChannelOrder (reach each person once, on the first channel
// of the order they can receive).

export const CHANNELS = ["EMAIL", "SMS", "PUSH", "CUSTOM"] as const;
export type Channel = (typeof CHANNELS)[number];

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
  content: Content;
  treatments: Treatment[]; // the additional ones (B, C, ...); the default treatment gets the rest
  when: "now" | "later";
  startTime: string;
  localTime: boolean;
  quietStart: string;
  quietEnd: string;
  holdout: number;
  dailyLimit: number | "";
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
  customData: "",
};

export const EMPTY: Draft = {
  name: "",
  segmentId: null,
  channels: ["EMAIL"],
  fallback: false,
  customUri: "",
  content: EMPTY_CONTENT,
  treatments: [],
  when: "now",
  startTime: "",
  localTime: false,
  quietStart: "",
  quietEnd: "",
  holdout: 0,
  dailyLimit: "",
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
export function channelOrder(channels: Channel[]): ("GCM" | "APNS" | Exclude<Channel, "PUSH">)[] {
  return channels.flatMap((channel) => (channel === "PUSH" ? (["GCM", "APNS"] as const) : [channel]));
}

/** The CreateCampaign request the wizard's answers make. */
export function request(draft: Draft) {
  const quiet = draft.quietStart && draft.quietEnd ? { QuietTime: { Start: draft.quietStart, End: draft.quietEnd } } : {};
  const custom = draft.channels.includes("CUSTOM") ? { CustomDeliveryConfiguration: { DeliveryUri: draft.customUri } } : {};
  return {
    Name: draft.name,
    SegmentId: draft.segmentId ?? "",
    HoldoutPercent: draft.holdout || undefined,
    Limits: draft.dailyLimit ? { Daily: Number(draft.dailyLimit) } : undefined,
    Schedule: {
      StartTime: draft.when === "now" ? "IMMEDIATE" : draft.startTime,
      Frequency: "ONCE" as const,
      IsLocalTime: draft.localTime || undefined,
      ...quiet,
    },
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
    ...(draft.fallback && draft.channels.length > 1 ? { ClarionChannelOrder: channelOrder(draft.channels) } : {}),
  };
}
