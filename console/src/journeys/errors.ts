// Where a refusal of UpdateJourney belongs on the page. The server starts each message with the member it is about
// ("Limits.DailyCap must be ...", "Activities.pause.Wait.WaitTime.WaitFor: ..."), so the message is shown on that
// field: in the settings, or in the form of the activity it names.

const PATH = /^[A-Za-z][A-Za-z0-9]*(?:\.[A-Za-z0-9_]+|\[\d+\])*/;

/** The member a server message is about, as a path ("" when it names none). */
export function errorPath(message: string): string {
  return PATH.exec(message)?.[0] ?? "";
}

/** Whether the message is about the member at `path` or something inside it. */
export function isAbout(message: string, path: string): boolean {
  const at = errorPath(message);
  return at === path || at.startsWith(`${path}.`) || at.startsWith(`${path}[`);
}

/** The activity (of `ids`) the message is about, if any. */
export function errorActivity(message: string, ids: string[]): string | undefined {
  const [top, id] = errorPath(message).split(".");
  return top === "Activities" && id !== undefined && ids.includes(id) ? id : undefined;
}

/** The settings form's fields, each with the members whose refusals it shows. */
export const SETTINGS_FIELDS = {
  entry: ["StartCondition"],
  segmentId: ["StartCondition.SegmentStartCondition.SegmentId", "StartCondition.EventStartCondition.SegmentId"],
  eventType: ["StartCondition.EventStartCondition.EventFilter", "StartCondition.EventStartCondition.EventFilter.Dimensions.EventType.Values"],
  startTime: ["Schedule.StartTime"],
  endTime: ["Schedule.EndTime"],
  timezone: ["Schedule.Timezone"],
  quietStart: ["QuietTime.Start", "QuietTime"],
  quietEnd: ["QuietTime.End"],
  DailyCap: ["Limits.DailyCap"],
  TotalCap: ["Limits.TotalCap"],
  EndpointReentryCap: ["Limits.EndpointReentryCap"],
  MessagesPerSecond: ["Limits.MessagesPerSecond"],
  timeframeCap: ["Limits.TimeframeCap.Cap", "Limits.TimeframeCap"],
  timeframeDays: ["Limits.TimeframeCap.Days"],
  reentryInterval: ["Limits.EndpointReentryInterval"],
  refreshFrequency: ["RefreshFrequency"],
  refreshOnSegmentUpdate: ["RefreshOnSegmentUpdate"],
} as const;

/** The settings field that shows the message, if one does (exact members only: "QuietTime" names both times). */
export function settingsField(message: string): keyof typeof SETTINGS_FIELDS | undefined {
  const at = errorPath(message);
  const fields = Object.entries(SETTINGS_FIELDS) as [keyof typeof SETTINGS_FIELDS, readonly string[]][];
  return fields.find(([, paths]) => paths.includes(at))?.[0];
}
