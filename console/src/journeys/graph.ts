// A journey's activities as a graph to draw: each activity is a node, each way out of it (NextActivity, a branch, the
// true/false paths, the default) an edge from one of its slots, and nodes are laid out in columns by their distance
// from the start unless the journey keeps where they were moved to.
import type { Schemas } from "../api/client";

export type Activity = Schemas["Activity"];

export const KINDS = ["EMAIL", "SMS", "PUSH", "CUSTOM", "Wait", "Holdout", "RandomSplit", "ConditionalSplit", "MultiCondition", "ContactCenter"] as const;
export type Kind = (typeof KINDS)[number];
/** The kinds with one way out, NextActivity. */
export const SINGLE_EXIT = ["EMAIL", "SMS", "PUSH", "CUSTOM", "Wait", "Holdout", "ContactCenter"] as const;

export interface GraphNode {
  id: string;
  kind: Kind | "";
  column: number;
  row: number;
}

export interface GraphEdge {
  source: string;
  /** The way out it leaves by: a slot of the source (see `slots`). */
  slot: string;
  target: string;
  /** What the way out is called when there are several: a branch's percentage, yes/no, a branch number or else. */
  label?: string;
}

/** One way out of an activity: `slot` names it ("next", "yes", "no", "else", "branch0", ...), `target` is where it
 *  leads when it is set. */
export interface Slot {
  slot: string;
  target?: string;
  label?: string;
}

/** The activity's type key (EMAIL, Wait, RandomSplit, ...), or "" for an activity with none. */
export function activityKind(activity: Activity): Kind | "" {
  return KINDS.find((kind) => activity[kind]) ?? "";
}

/** Every way out of one activity, set or not, in the order the journey lists them. */
export function slots(activity: Activity): Slot[] {
  const kind = activityKind(activity);
  const target = (value: string | null | undefined) => value ?? undefined;
  switch (kind) {
    case "":
      return [];
    case "RandomSplit":
      return (activity.RandomSplit?.Branches ?? []).map((branch, index) => ({
        slot: `branch${index}`,
        target: target(branch.NextActivity),
        label: `${branch.Percentage ?? 0}%`,
      }));
    case "ConditionalSplit":
      return [
        { slot: "yes", target: target(activity.ConditionalSplit?.TrueActivity), label: "yes" },
        { slot: "no", target: target(activity.ConditionalSplit?.FalseActivity), label: "no" },
      ];
    case "MultiCondition":
      return [
        ...(activity.MultiCondition?.Branches ?? []).map((branch, index) => ({
          slot: `branch${index}`,
          target: target(branch.NextActivity),
          label: `${index + 1}`,
        })),
        { slot: "else", target: target(activity.MultiCondition?.DefaultActivity), label: "else" },
      ];
    default:
      return [{ slot: "next", target: target(activity[kind]?.NextActivity) }];
  }
}

/** The ways out of one activity that lead somewhere. */
export function exits(activity: Activity): (Slot & { target: string })[] {
  return slots(activity).filter((slot): slot is Slot & { target: string } => Boolean(slot.target));
}

/** Nodes in columns by their shortest distance from `start` (activities it never reaches go in a last column),
 *  and the edges between them. */
export function journeyGraph(activities: Record<string, Activity>, start: string | null | undefined): { nodes: GraphNode[]; edges: GraphEdge[] } {
  const column = new Map<string, number>();
  const queue = start && activities[start] ? [start] : [];
  if (queue.length) column.set(queue[0], 0);
  while (queue.length) {
    const id = queue.shift()!;
    for (const { target } of exits(activities[id])) {
      if (activities[target] && !column.has(target)) {
        column.set(target, column.get(id)! + 1);
        queue.push(target);
      }
    }
  }
  const unreached = Math.max(-1, ...column.values()) + 1;
  const rows = new Map<number, number>();
  const nodes = Object.keys(activities).map((id) => {
    const at = column.get(id) ?? unreached;
    const row = rows.get(at) ?? 0;
    rows.set(at, row + 1);
    return { id, kind: activityKind(activities[id]), column: at, row };
  });
  const edges = Object.entries(activities).flatMap(([id, activity]) =>
    exits(activity)
      .filter(({ target }) => activities[target])
      .map(({ slot, target, label }) => ({ source: id, slot, target, label })),
  );
  return { nodes, edges };
}
