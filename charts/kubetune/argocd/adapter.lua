-- Argo CD health check for kubetune.io/Adapter (argocd-cm key
-- resource.customizations.health.kubetune.io_Adapter). An Adapter is an immutable registry
-- entry: Healthy once its FineTuneJob registered it (Ready, pushed and pinned by digest) or when
-- it was written by hand (nothing to wait for); Degraded if Ready is False. The message carries
-- its promotion state (candidate, canary, stable, retired).
local hs = {}
local ready = nil
if obj.status ~= nil and obj.status.conditions ~= nil then
  for _, c in ipairs(obj.status.conditions) do
    if c.type == "Ready" then
      ready = c
    end
  end
end
local state = "candidate"
if obj.status ~= nil and obj.status.state ~= nil then
  state = obj.status.state
end
if ready ~= nil and ready.status ~= "True" then
  hs.status = "Degraded"
  hs.message = ready.reason .. ": " .. (ready.message or "")
  return hs
end
hs.status = "Healthy"
if ready ~= nil then
  hs.message = state .. "; " .. (ready.message or ready.reason)
else
  hs.message = state .. "; not registered by a kubetune FineTuneJob"
end
return hs
