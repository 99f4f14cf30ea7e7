// What the forms choose from, read under one query key each so that every page offering it shares the answer: the
// project's segments (as options to pick) and the account's templates.
import { useQuery } from "@tanstack/react-query";
import { api, call } from "./client";

export function useSegmentOptions(appId: string): { value: string; label: string }[] {
  const segments = useQuery({
    queryKey: ["segments-all", appId],
    queryFn: () => call(api.GET("/v1/apps/{application-id}/segments", { params: { path: { "application-id": appId } } })),
  });
  return (segments.data?.Item ?? []).map((segment) => ({ value: segment.Id, label: segment.Name ?? segment.Id }));
}

export function useTemplates(): { TemplateName: string; TemplateType: string }[] {
  const templates = useQuery({
    queryKey: ["templates-all"],
    queryFn: () => call(api.GET("/v1/templates", { params: { query: { "page-size": "100" } } })),
  });
  return templates.data?.Item ?? [];
}
