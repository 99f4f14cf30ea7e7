// A journey's settings as the form edits them — how people enter (a segment's members, or an app event), schedule,
// local time, quiet time, limits, refresh — and back as the members of UpdateJourney's request. An empty field
// leaves its member out; the server checks the values.
import type { Settings } from "./edit";

/** Pinpoint's journey time zones (Schedule.Timezone), as its API lists them. */
export const TIMEZONES = [
  "UTC",
  ...["01", "02", "03", "03:30", "04", "04:30", "05", "05:30", "05:45", "06", "06:30", "07", "08", "08:45", "09", "09:30", "10", "10:30", "11", "12", "12:45", "13", "13:45"].map(
    (offset) => `UTC+${offset}`,
  ),
  ...["02", "02:30", "03", "03:30", "04", "05", "06", "07", "08", "09", "09:30", "10", "11"].map((offset) => `UTC-${offset}`),
];

export const LIMITS = ["DailyCap", "TotalCap", "EndpointReentryCap", "MessagesPerSecond"] as const;
type Limit = (typeof LIMITS)[number];

export interface SettingsDraft {
  /** Entry: the segment's members (SegmentStartCondition), or each endpoint reporting an event (EventStartCondition),
   *  optionally only the segment's. */
  entry: "segment" | "event";
  segmentId: string | null;
  eventType: string;
  /** The StartCondition as read: written back whole while the entry is unchanged, so what the form does not show
   *  (an event filter's attributes and metrics, a description) is kept. */
  readStart?: Settings["StartCondition"];
  startTime: string;
  endTime: string;
  timezone: string | null;
  localTime: boolean;
  quietStart: string;
  quietEnd: string;
  waitForQuietTime: boolean;
  limits: Record<Limit, number | "">;
  timeframeCap: number | "";
  timeframeDays: number | "";
  reentryInterval: string;
  refreshFrequency: string;
  refreshOnSegmentUpdate: boolean;
  /** JourneyChannelSettings: what a ContactCenter activity passes to the contact center (Clarion's stand-in webhook). */
  connectCampaignArn: string;
  connectRoleArn: string;
}

const text = (value: unknown) => (value == null ? "" : String(value));
const count = (value: number | null | undefined): number | "" => (value == null ? "" : value);
const given = (value: string) => value.trim() || undefined;
const number = (value: number | "") => (value === "" ? undefined : value);

/** The form's values for a journey as read. */
export function settingsDraft(journey: Settings): SettingsDraft {
  const limits = journey.Limits ?? {};
  const event = journey.StartCondition?.EventStartCondition;
  return {
    entry: event ? "event" : "segment",
    segmentId: (event ? event.SegmentId : journey.StartCondition?.SegmentStartCondition?.SegmentId) ?? null,
    eventType: event?.EventFilter?.Dimensions.EventType?.Values?.[0] ?? "",
    readStart: journey.StartCondition,
    startTime: text(journey.Schedule?.StartTime),
    endTime: text(journey.Schedule?.EndTime),
    timezone: journey.Schedule?.Timezone ?? null,
    localTime: Boolean(journey.LocalTime),
    quietStart: text(journey.QuietTime?.Start),
    quietEnd: text(journey.QuietTime?.End),
    waitForQuietTime: Boolean(journey.WaitForQuietTime),
    limits: Object.fromEntries(LIMITS.map((name) => [name, count(limits[name])])) as Record<Limit, number | "">,
    timeframeCap: count(limits.TimeframeCap?.Cap),
    timeframeDays: count(limits.TimeframeCap?.Days),
    reentryInterval: text(limits.EndpointReentryInterval),
    refreshFrequency: text(journey.RefreshFrequency),
    refreshOnSegmentUpdate: Boolean(journey.RefreshOnSegmentUpdate),
    connectCampaignArn: text(journey.JourneyChannelSettings?.ConnectCampaignArn),
    connectRoleArn: text(journey.JourneyChannelSettings?.ConnectCampaignExecutionRoleArn),
  };
}

/** How people enter: as read while the entry is unchanged; else the segment's members, or an app event. */
function startCondition(draft: SettingsDraft): Settings["StartCondition"] {
  const eventType = draft.eventType.trim();
  const read = settingsDraft({ StartCondition: draft.readStart });
  if (draft.readStart && read.entry === draft.entry && read.segmentId === draft.segmentId && read.eventType === eventType) return draft.readStart;
  if (draft.entry === "segment") return draft.segmentId ? { SegmentStartCondition: { SegmentId: draft.segmentId } } : undefined;
  const filter = { FilterType: "ENDPOINT" as const, Dimensions: { EventType: { DimensionType: "INCLUSIVE" as const, Values: eventType ? [eventType] : [] } } };
  return { EventStartCondition: { EventFilter: filter, SegmentId: draft.segmentId ?? undefined } };
}

/** The request's members for the form's values; every member the form shows is present, undefined when empty. */
export function settingsMembers(draft: SettingsDraft): Settings {
  const schedule = { StartTime: given(draft.startTime), EndTime: given(draft.endTime), Timezone: draft.timezone ?? undefined };
  const limits = {
    ...Object.fromEntries(LIMITS.map((name) => [name, number(draft.limits[name])])),
    EndpointReentryInterval: given(draft.reentryInterval),
    TimeframeCap:
      draft.timeframeCap === "" && draft.timeframeDays === "" ? undefined : { Cap: number(draft.timeframeCap), Days: number(draft.timeframeDays) },
  };
  const present = (value: object) => Object.values(value).some((member) => member !== undefined);
  return {
    StartCondition: startCondition(draft),
    Schedule: present(schedule) ? (schedule as Settings["Schedule"]) : undefined,
    LocalTime: draft.localTime || undefined,
    QuietTime: draft.quietStart || draft.quietEnd ? { Start: given(draft.quietStart), End: given(draft.quietEnd) } : undefined,
    WaitForQuietTime: draft.waitForQuietTime || undefined,
    Limits: present(limits) ? limits : undefined,
    RefreshFrequency: given(draft.refreshFrequency),
    RefreshOnSegmentUpdate: draft.refreshOnSegmentUpdate || undefined,
    JourneyChannelSettings:
      draft.connectCampaignArn.trim() || draft.connectRoleArn.trim()
        ? { ConnectCampaignArn: given(draft.connectCampaignArn), ConnectCampaignExecutionRoleArn: given(draft.connectRoleArn) }
        : undefined,
  };
}
