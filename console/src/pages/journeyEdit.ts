// Building a journey on the canvas: new activities, connecting one to the next, removing one, and the
// UpdateJourney request the edited journey makes (the server validates it and answers what is wrong).
import type { Schemas } from "../api/client";

type Activity = Schemas["Activity"];
type Journey = Schemas["JourneyResponse"];

/** The kinds the canvas adds: one way out each (NextActivity). */
export const ADDABLE = ["EMAIL", "SMS", "PUSH", "Wait", "Holdout"] as const;
export type Addable = (typeof ADDABLE)[number];

export interface NewActivity {
  kind: Addable;
  description: string;
  templateName: string; // EMAIL, SMS, PUSH
  waitFor: string; // Wait: an ISO 8601 duration such as PT1H
  percentage: number; // Holdout
}

export function newActivity(draft: NewActivity): Activity {
  const description = draft.description || undefined;
  switch (draft.kind) {
    case "Wait":
      return { Description: description, Wait: { WaitTime: { WaitFor: draft.waitFor } } };
    case "Holdout":
      return { Description: description, Holdout: { Percentage: draft.percentage } };
    default:
      return { Description: description, [draft.kind]: { TemplateName: draft.templateName } };
  }
}

const SINGLE_EXIT = ["EMAIL", "SMS", "PUSH", "CUSTOM", "Wait", "Holdout", "ContactCenter"] as const;

/** The activities with `source`'s way out leading to `target`; unchanged when `source` has no single way out. */
export function connect(activities: Record<string, Activity>, source: string, target: string): Record<string, Activity> {
  const activity = activities[source];
  const kind = SINGLE_EXIT.find((name) => activity?.[name]);
  if (!kind || source === target) return activities;
  return { ...activities, [source]: { ...activity, [kind]: { ...activity[kind], NextActivity: target } } };
}

/** The activities without `id`, and with every way into it cut. */
export function remove(activities: Record<string, Activity>, id: string): Record<string, Activity> {
  const rest = Object.fromEntries(Object.entries(activities).filter(([key]) => key !== id));
  for (const [key, activity] of Object.entries(rest)) {
    const kind = SINGLE_EXIT.find((name) => activity[name]?.NextActivity === id);
    if (kind) rest[key] = { ...activity, [kind]: { ...activity[kind], NextActivity: undefined } };
  }
  return rest;
}

const WRITABLE = [
  "Name",
  "StartCondition",
  "Schedule",
  "Limits",
  "QuietTime",
  "LocalTime",
  "RefreshFrequency",
  "RefreshOnSegmentUpdate",
  "WaitForQuietTime",
  "JourneyChannelSettings",
  "SendingSchedule",
  "OpenHours",
  "ClosedDays",
  "TimezoneEstimationMethods",
] as const;

/** UpdateJourney's request: the journey as read, with these activities and start, and the state asked for. */
export function writeRequest(journey: Journey, activities: Record<string, Activity>, start: string | null, state?: "ACTIVE") {
  const kept = Object.fromEntries(WRITABLE.filter((name) => journey[name] != null).map((name) => [name, journey[name]]));
  return { ...kept, Name: journey.Name, Activities: activities, StartActivity: start ?? undefined, ...(state ? { State: state } : {}) };
}
