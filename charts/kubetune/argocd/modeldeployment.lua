-- Argo CD health check for kubetune.io/ModelDeployment (argocd-cm key
-- resource.customizations.health.kubetune.io_ModelDeployment). Reads the kstatus conditions the
-- operator writes: Healthy when the revision the spec asks for serves all traffic, Progressing
-- while a canary rolls out (or an Adapter it names is not registered yet), Suspended while a
-- pause step waits, Degraded when the canary was rolled back, the rollout is held
-- (RolloutStalled), the stable pods are lost, or the spec is refused.
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
  hs.message = "waiting for the kubetune operator to pick the ModelDeployment up"
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
local held = condition("RolloutStalled")
if held ~= nil and held.status == "True" then
  hs.status = "Degraded"
  hs.message = held.reason .. ": " .. (held.message or "")
  return hs
end
local ready = condition("Ready")
if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = ready.message or ready.reason
  return hs
end
if obj.status.phase == "Degraded" then
  hs.status = "Degraded"
elseif obj.status.phase == "Paused" then
  hs.status = "Suspended"
else
  hs.status = "Progressing"
end
local why = condition("Reconciling") or ready
if why ~= nil then
  hs.message = why.message or why.reason
else
  hs.message = obj.status.phase or "Pending"
end
return hs
