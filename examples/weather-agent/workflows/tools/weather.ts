/**
 * A stand-in weather service: the same city always gets the same weather, so the example runs offline.
 * Replace the body with a call to a real API (and list its host under `permissions.net`).
 */
export default (input: { city: string }) => {
  const seed = [...input.city.toLowerCase()].reduce((sum, c) => sum + c.charCodeAt(0), 0);
  const conditions = ["sunny", "cloudy", "rainy", "windy", "snowy"][seed % 5];
  const celsius = (seed % 35) - 5;
  const fahrenheit = Deno.env.get("UNITS") === "imperial";
  return { city: input.city, temperature: fahrenheit ? celsius * 9 / 5 + 32 : celsius, conditions };
};
