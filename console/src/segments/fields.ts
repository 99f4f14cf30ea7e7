// The fields a segment rule can test, with their operators and hints, labelled in the reader's language: the segment
// builder's and the journey splits' endpoint conditions (both made into dimensions by ./definition.ts).
import { useMemo } from "react";
import { useTranslation } from "react-i18next";
import type { Field } from "react-querybuilder";
import { DEMOGRAPHIC, DURATIONS } from "./definition";

export function useFields(): Field[] {
  const { t } = useTranslation();
  return useMemo(() => {
    const inclusion = [
      { name: "in", label: t("segments.op.in") },
      { name: "notIn", label: t("segments.op.notIn") },
    ];
    const attribute = [
      ...inclusion,
      { name: "contains", label: t("segments.op.contains") },
      { name: "before", label: t("segments.op.before") },
      { name: "after", label: t("segments.op.after") },
    ];
    return [
      ...DEMOGRAPHIC.map((member) => ({
        name: `Demographic.${member}`,
        label: t(`segments.field.${member}`),
        operators: inclusion,
        placeholder: t("segments.hint.values"),
      })),
      { name: "Location.Country", label: t("segments.field.Country"), operators: inclusion, placeholder: "KR, US" },
      {
        name: "Location.GPSPoint",
        label: t("segments.field.GPSPoint"),
        operators: [{ name: "within", label: t("segments.op.within") }],
        placeholder: t("segments.hint.gps"),
      },
      { name: "Attributes", label: t("segments.field.Attributes"), operators: attribute, placeholder: t("segments.hint.named") },
      {
        name: "UserAttributes",
        label: t("segments.field.UserAttributes"),
        operators: attribute,
        placeholder: t("segments.hint.named"),
      },
      {
        name: "Metrics",
        label: t("segments.field.Metrics"),
        operators: ["<", "<=", ">", ">=", "="].map((name) => ({ name, label: name })),
        placeholder: t("segments.hint.metric"),
      },
      {
        name: "Behavior.Recency",
        label: t("segments.field.Recency"),
        operators: [
          { name: "active", label: t("segments.op.active") },
          { name: "inactive", label: t("segments.op.inactive") },
        ],
        valueEditorType: "select",
        values: DURATIONS.map((name) => ({ name, label: t(`segments.duration.${name}`) })),
        defaultValue: "DAY_30",
      },
      {
        name: "ClarionBehavior",
        label: t("segments.field.ClarionBehavior"),
        operators: [{ name: "performed", label: t("segments.op.performed") }],
        placeholder: t("segments.hint.event"),
      },
    ];
  }, [t]);
}
