using System.Text.Json.Nodes;
using PeftLab.Training;

namespace PeftLab.Tests.Training;

public sealed class RunStatusesTests
{
    [Theory]
    [InlineData("{\"status\": \"completed\"}", RunStatus.Completed)]
    [InlineData("{\"status\": \"diverged\"}", RunStatus.Diverged)]
    [InlineData("{\"status\": \"interrupted\"}", RunStatus.Interrupted)]
    [InlineData("{\"status\": \"Completed\"}", null)]   // written lower-case only: anything else is not a status
    [InlineData("{\"status\": \"running\"}", null)]
    [InlineData("{\"status\": 3}", null)]
    [InlineData("{}", null)]
    public void TheStatusIsReadAsWritten(string json, RunStatus? expected) => Assert.Equal(expected, RunStatuses.Of(JsonNode.Parse(json)));

    [Fact]
    public void EveryStatusRoundTrips()
    {
        foreach (var s in Enum.GetValues<RunStatus>())
            Assert.Equal(s, RunStatuses.Of(new JsonObject { [RunStatuses.Key] = RunStatuses.Name(s) }));
    }
}
