import { describe, expect, it } from "vitest";
import { RuleError, dimensionsRule, ruleDimensions, toDefinition } from "./definition";

const rule = (field: string, operator: string, value: string) => ({ field, operator, value });

describe("toDefinition", () => {
  it("is null while no rule has a value", () => {
    expect(toDefinition({ combinator: "and", rules: [rule("Location.Country", "in", " ")] })).toBeNull();
  });

  it("makes one dimension object per rule, the top rules one group and each nested group another", () => {
    const definition = toDefinition({
      combinator: "and",
      rules: [
        rule("Location.Country", "in", "KR, US"),
        rule("Demographic.Platform", "notIn", "android"),
        { combinator: "or", rules: [rule("Attributes.x", "contains", "plan: gold, silver"), rule("Metrics.x", ">=", "visits: 3")] },
        { combinator: "and", not: true, rules: [rule("Behavior.Recency", "inactive", "DAY_30")] },
      ],
    });
    expect(definition).toEqual({
      SegmentGroups: {
        Include: "ALL",
        Groups: [
          {
            Type: "ALL",
            Dimensions: [
              { Location: { Country: { DimensionType: "INCLUSIVE", Values: ["KR", "US"] } } },
              { Demographic: { Platform: { DimensionType: "EXCLUSIVE", Values: ["android"] } } },
            ],
          },
          {
            Type: "ANY",
            Dimensions: [
              { Attributes: { plan: { AttributeType: "CONTAINS", Values: ["gold", "silver"] } } },
              { Metrics: { visits: { ComparisonOperator: "GREATER_THAN_OR_EQUAL", Value: 3 } } },
            ],
          },
          { Type: "NONE", Dimensions: [{ Behavior: { Recency: { Duration: "DAY_30", RecencyType: "INACTIVE" } } }] },
        ],
      },
    });
  });

  it("reads GPS radii and Clarion behaviour conditions", () => {
    const definition = toDefinition({
      combinator: "or",
      rules: [rule("Location.GPSPoint", "within", "37.5, 127.0, 10"), rule("ClarionBehavior", "performed", "purchase: 30")],
    });
    expect(definition?.SegmentGroups.Include).toBe("ANY");
    expect(definition?.SegmentGroups.Groups?.[0].Dimensions).toEqual([
      { Location: { GPSPoint: { Coordinates: { Latitude: 37.5, Longitude: 127 }, RangeInKilometers: 10 } } },
      { ClarionBehavior: [{ EventType: "purchase", Minimum: 1, WithinDays: 30 }] },
    ]);
  });

  it("names the rule it cannot read", () => {
    expect(() => toDefinition({ combinator: "and", rules: [rule("Metrics.x", ">", "visits: many")] })).toThrow(RuleError);
    expect(() => toDefinition({ combinator: "and", rules: [rule("UserAttributes.x", "in", "no colon")] })).toThrow(
      "segments.error.named",
    );
  });
});

describe("dimensionsRule", () => {
  it("gives back the rule that made the dimensions", () => {
    const rules = [
      rule("Demographic.Channel", "notIn", "EMAIL, SMS"),
      rule("Location.Country", "in", "KR"),
      rule("Location.GPSPoint", "within", "37.5, 127, 10"),
      rule("Attributes", "contains", "plan: gold, silver"),
      rule("UserAttributes", "before", "joined: 2026-01-01"),
      rule("Metrics", "<", "visits: 3"),
      rule("Behavior.Recency", "active", "DAY_7"),
    ];
    for (const made of rules) expect(dimensionsRule(ruleDimensions(made))).toEqual(made);
  });
  it("is null for dimensions no single rule makes", () => {
    expect(dimensionsRule({ Demographic: { Channel: { Values: ["EMAIL"] }, Platform: { Values: ["ios"] } } })).toBeNull();
    expect(dimensionsRule({ ClarionBehavior: [{ EventType: "buy", Minimum: 1 }] })).toBeNull();
    expect(dimensionsRule({})).toBeNull();
  });
});
