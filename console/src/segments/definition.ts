// The segment builder's query (react-querybuilder's rules and groups) as a Pinpoint segment definition: each rule
// is one SegmentDimensions object; the rules at the top form one group and each nested group another, combined
// with the top combinator (SegmentGroups.Include). Incomplete rules (no value yet) are left out, so the live size
// estimate follows the builder as the user types.
import type { RuleGroupType, RuleType } from "react-querybuilder";
import type { Schemas } from "../api/client";

export type Dimensions = Schemas["ExtendedSegmentDimensions"];
export type Definition = { SegmentGroups: NonNullable<Schemas["ExtendedWriteSegmentRequest"]["SegmentGroups"]> };

/** A rule whose value cannot be read; `key` names the message (the page translates it). */
export class RuleError extends Error {
  constructor(
    readonly key: string,
    readonly field: string,
  ) {
    super(`${key}: ${field}`);
  }
}

export const DEMOGRAPHIC = ["Platform", "Channel", "Make", "Model", "AppVersion"] as const;
export const DURATIONS = ["HR_24", "DAY_7", "DAY_14", "DAY_30"] as const;
const ATTRIBUTE_TYPES: Record<string, string> = {
  in: "INCLUSIVE",
  notIn: "EXCLUSIVE",
  contains: "CONTAINS",
  before: "BEFORE",
  after: "AFTER",
  on: "ON",
  between: "BETWEEN",
};
const COMPARISONS: Record<string, string> = {
  "<": "LESS_THAN",
  "<=": "LESS_THAN_OR_EQUAL",
  ">": "GREATER_THAN",
  ">=": "GREATER_THAN_OR_EQUAL",
  "=": "EQUAL",
};

const list = (text: string) =>
  text
    .split(",")
    .map((part) => part.trim())
    .filter(Boolean);

/** "Name: a, b" as the name and its values. */
function named(rule: RuleType): [string, string] {
  const text = String(rule.value ?? "");
  const colon = text.indexOf(":");
  if (colon <= 0) throw new RuleError("segments.error.named", rule.field);
  return [text.slice(0, colon).trim(), text.slice(colon + 1).trim()];
}

function number(text: string, field: string): number {
  const value = Number(text);
  if (text.trim() === "" || !Number.isFinite(value)) throw new RuleError("segments.error.number", field);
  return value;
}

function isComplete(rule: RuleType): boolean {
  return String(rule.value ?? "").trim() !== "";
}

export function ruleDimensions(rule: RuleType): Dimensions {
  const value = String(rule.value ?? "").trim();
  const [family, member] = rule.field.split(".");
  const inclusion = { DimensionType: rule.operator === "notIn" ? "EXCLUSIVE" : "INCLUSIVE", Values: list(value) } as const;
  switch (family) {
    case "Demographic":
      return { Demographic: { [member]: inclusion } };
    case "Location":
      if (member === "Country") return { Location: { Country: inclusion } };
      {
        const [latitude, longitude, km] = list(value).map((part) => number(part, rule.field));
        if (km === undefined) throw new RuleError("segments.error.gps", rule.field);
        return {
          Location: { GPSPoint: { Coordinates: { Latitude: latitude, Longitude: longitude }, RangeInKilometers: km } },
        };
      }
    case "Attributes":
    case "UserAttributes": {
      const [name, values] = named(rule);
      const dimension = { AttributeType: ATTRIBUTE_TYPES[rule.operator] ?? "INCLUSIVE", Values: list(values) };
      return { [family]: { [name]: dimension } } as Dimensions;
    }
    case "Metrics": {
      const [name, amount] = named(rule);
      return {
        Metrics: { [name]: { ComparisonOperator: COMPARISONS[rule.operator] ?? "EQUAL", Value: number(amount, rule.field) } },
      };
    }
    case "Behavior":
      return {
        Behavior: {
          Recency: {
            Duration: value as (typeof DURATIONS)[number],
            RecencyType: rule.operator === "inactive" ? "INACTIVE" : "ACTIVE",
          },
        },
      };
    case "ClarionBehavior": {
      // "EventType" or "EventType: N" (within the last N days); performed at least once.
      const colon = value.indexOf(":");
      const eventType = (colon > 0 ? value.slice(0, colon) : value).trim();
      const days = colon > 0 ? number(value.slice(colon + 1).trim(), rule.field) : undefined;
      return { ClarionBehavior: [{ EventType: eventType, Minimum: 1, ...(days ? { WithinDays: days } : {}) }] };
    }
    default:
      throw new RuleError("segments.error.field", rule.field);
  }
}

const swapped = (map: Record<string, string>) => Object.fromEntries(Object.entries(map).map(([key, value]) => [value, key]));
const ATTRIBUTE_OPERATORS = swapped(ATTRIBUTE_TYPES);
const COMPARISON_OPERATORS = swapped(COMPARISONS);

/** The rule that makes these dimensions (the inverse of ruleDimensions), so a stored condition opens in the rule's
 *  inputs; null for dimensions no single rule makes. */
export function dimensionsRule(dimensions: Dimensions): RuleType | null {
  const families = Object.entries(dimensions).filter(([, value]) => value != null);
  if (families.length !== 1) return null;
  const [family, body] = families[0] as [string, Record<string, unknown>];
  const members = Object.entries(body).filter(([, value]) => value != null);
  if (members.length !== 1) return null;
  const [member, value] = members[0] as [string, Record<string, unknown>];
  const values = ((value.Values as string[] | undefined) ?? []).join(", ");
  const inclusion = value.DimensionType === "EXCLUSIVE" ? "notIn" : "in";
  switch (family) {
    case "Demographic":
      return { field: `Demographic.${member}`, operator: inclusion, value: values };
    case "Location": {
      if (member === "Country") return { field: "Location.Country", operator: inclusion, value: values };
      const point = value as { Coordinates?: { Latitude?: number; Longitude?: number }; RangeInKilometers?: number };
      const gps = [point.Coordinates?.Latitude, point.Coordinates?.Longitude, point.RangeInKilometers];
      return { field: "Location.GPSPoint", operator: "within", value: gps.join(", ") };
    }
    case "Attributes":
    case "UserAttributes":
      return { field: family, operator: ATTRIBUTE_OPERATORS[String(value.AttributeType)] ?? "in", value: `${member}: ${values}` };
    case "Metrics":
      return { field: "Metrics", operator: COMPARISON_OPERATORS[String(value.ComparisonOperator)] ?? "=", value: `${member}: ${value.Value}` };
    case "Behavior":
      return { field: "Behavior.Recency", operator: value.RecencyType === "INACTIVE" ? "inactive" : "active", value: String(value.Duration) };
    default:
      return null;
  }
}

const groupType = (group: RuleGroupType) => (group.not ? "NONE" : group.combinator === "or" ? "ANY" : "ALL");

/** The definition, or null while no rule is complete. */
export function toDefinition(query: RuleGroupType): Definition | null {
  const rules = query.rules.filter((item): item is RuleType => !("rules" in item) && isComplete(item));
  const nested = query.rules.filter((item): item is RuleGroupType => "rules" in item);
  const groups: Definition["SegmentGroups"]["Groups"] = [];
  if (rules.length) groups.push({ Dimensions: rules.map(ruleDimensions), Type: groupType(query) });
  for (const group of nested) {
    const inner = group.rules.filter((item): item is RuleType => !("rules" in item) && isComplete(item));
    if (inner.length) groups.push({ Dimensions: inner.map(ruleDimensions), Type: groupType(group) });
  }
  if (!groups.length) return null;
  return { SegmentGroups: { Groups: groups, Include: query.combinator === "or" ? "ANY" : "ALL" } };
}
