// Building a journey on the canvas: new activities of every kind, leading one way out of an activity to another,
// changing or removing one, and the UpdateJourney request the edited journey makes (the server validates it and
// answers what is wrong, naming the member).
import type { Schemas } from "../api/client";
import { activityKind, slots, type Activity, type Kind } from "./graph";

type Journey = Schemas["ExtendedJourneyResponse"];
export type Positions = Record<string, { X: number; Y: number }>;

/** A new activity of `kind`, with what a marketer would most often start from. */
export function newActivity(kind: Kind, description: string): Activity {
  const Description = description || undefined;
  switch (kind) {
    case "Wait":
      return { Description, Wait: { WaitTime: { WaitFor: "PT1H" } } };
    case "Holdout":
      return { Description, Holdout: { Percentage: 10 } };
    case "RandomSplit":
      return { Description, RandomSplit: { Branches: [{ Percentage: 50 }, { Percentage: 50 }] } };
    case "ConditionalSplit":
      return { Description, ConditionalSplit: { Condition: { Conditions: [{}], Operator: "ALL" } } };
    case "MultiCondition":
      return { Description, MultiCondition: { Branches: [{ Condition: {} }] } };
    default:
      return { Description, [kind]: {} };
  }
}

/** The activity with its kind's body merged with `patch` (undefined members are dropped when written). */
export function patchBody(activity: Activity, patch: Record<string, unknown>): Activity {
  const kind = activityKind(activity);
  if (!kind) return activity;
  return { ...activity, [kind]: { ...activity[kind], ...patch } };
}

/** The activity with its way out `slot` leading to `target` (or nowhere). */
function withExit(activity: Activity, slot: string, target: string | undefined): Activity {
  const kind = activityKind(activity);
  const branch = /^branch(\d+)$/.exec(slot);
  if (kind === "ConditionalSplit" && (slot === "yes" || slot === "no")) {
    return patchBody(activity, { [slot === "yes" ? "TrueActivity" : "FalseActivity"]: target });
  }
  if (kind === "MultiCondition" && slot === "else") return patchBody(activity, { DefaultActivity: target });
  if ((kind === "RandomSplit" || kind === "MultiCondition") && branch) {
    const branches = [...(activity[kind]?.Branches ?? [])];
    const index = Number(branch[1]);
    if (index >= branches.length) return activity;
    branches[index] = { ...branches[index], NextActivity: target };
    return patchBody(activity, { Branches: branches });
  }
  if (slot === "next" && kind && !["RandomSplit", "ConditionalSplit", "MultiCondition"].includes(kind)) {
    return patchBody(activity, { NextActivity: target });
  }
  return activity;
}

/** The activities with `source`'s way out `slot` leading to `target`; unchanged for a slot it does not have or a
 *  way back to itself. */
export function connect(activities: Record<string, Activity>, source: string, target: string | undefined, slot = "next"): Record<string, Activity> {
  const activity = activities[source];
  if (!activity || source === target) return activities;
  const changed = withExit(activity, slot, target);
  return changed === activity ? activities : { ...activities, [source]: changed };
}

/** The activities without `id`, every way into it cut. */
export function remove(activities: Record<string, Activity>, id: string): Record<string, Activity> {
  const rest: Record<string, Activity> = {};
  for (const [key, activity] of Object.entries(activities)) {
    if (key === id) continue;
    rest[key] = slots(activity)
      .filter((slot) => slot.target === id)
      .reduce((changed, slot) => withExit(changed, slot.slot, undefined), activity);
  }
  return rest;
}

/** The journey's members the canvas writes back as they were read (its settings form changes some of them). */
export const WRITABLE = [
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
export type Settings = Partial<Pick<Journey, (typeof WRITABLE)[number]>>;

/** UpdateJourney's request: the journey as read, with these settings, activities, start and positions (of the
 *  activities that exist), and the state asked for. UpdateJourney replaces the definition, so all of it is sent. */
export function writeRequest(
  journey: Journey,
  edits: { activities: Record<string, Activity>; start: string | null; settings: Settings; positions: Positions },
  state?: "ACTIVE",
) {
  const merged: Settings = { ...journey, ...edits.settings };
  const kept = Object.fromEntries(WRITABLE.filter((name) => merged[name] != null).map((name) => [name, merged[name]]));
  const positions = Object.fromEntries(Object.entries(edits.positions).filter(([id]) => id in edits.activities));
  return {
    ...kept,
    Name: journey.Name,
    Activities: edits.activities,
    StartActivity: edits.start ?? undefined,
    ...(Object.keys(positions).length ? { ClarionCanvas: { Positions: positions } } : {}),
    ...(state ? { State: state } : {}),
  };
}
