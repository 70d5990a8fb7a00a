-- Argo CD health check for kubetune.io/FineTuneJob (argocd-cm key
-- resource.customizations.health.kubetune.io_FineTuneJob). Reads the kstatus conditions the
-- operator writes: Healthy once trained and registered, Degraded when it failed (it does not
-- run again: a new name, or delete and re-create), Suspended under spec.suspend, else Progressing.
local hs = {}
local function condition(kind)
  if obj.status == nil or obj.status.conditions == nil then
    return nil
  end
  for _, c in ipairs(obj.status.conditions) do
    if c.type == kind then
      return c
    end
  end
  return nil
end
local generation = obj.metadata.generation
if obj.status == nil or obj.status.observedGeneration == nil then
  hs.status = "Progressing"
  hs.message = "waiting for the kubetune operator to pick the FineTuneJob up"
  return hs
end
if generation ~= nil and obj.status.observedGeneration < generation then
  hs.status = "Progressing"
  hs.message = "the operator has not seen generation " .. generation .. " yet"
  return hs
end
local stalled = condition("Stalled")
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = stalled.reason .. ": " .. (stalled.message or "")
  return hs
end
local ready = condition("Ready")
if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = ready.message or ready.reason
  return hs
end
if obj.status.phase == "Suspended" then
  hs.status = "Suspended"
else
  hs.status = "Progressing"
end
local reconciling = condition("Reconciling")
local why = reconciling or ready
if why ~= nil then
  hs.message = why.message or why.reason
else
  hs.message = obj.status.phase or "Pending"
end
return hs
