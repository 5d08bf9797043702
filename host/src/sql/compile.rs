//! SQL text to a physical expression, with DataFusion's parser, planner, type coercion and functions.
//!
//! Weir uses DataFusion's expression crates rather than the whole engine (no query planner, tables or
//! execution runtime): a stage needs expressions only, and the whole `datafusion` crate took several
//! times as long to build (docs/benchmarks.md, "SQL stages"). What a `SessionContext` would supply, the
//! functions and the SQL syntax planners, [`Functions`] supplies here.

use std::collections::HashMap;
use std::sync::Arc;

use arrow_schema::DataType;
use datafusion_common::config::ConfigOptions;
use datafusion_common::{DFSchema, DataFusionError, Result, TableReference};
use datafusion_expr::execution_props::ExecutionProps;
use datafusion_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion_expr::planner::{ContextProvider, ExprPlanner};
use datafusion_expr::simplify::SimplifyContext;
use datafusion_expr::{AggregateUDF, Expr, HigherOrderUDF, ScalarUDF, TableSource, WindowUDF};
use datafusion_optimizer::simplify_expressions::ExprSimplifier;
use datafusion_physical_expr::{create_physical_expr, PhysicalExpr};
use datafusion_sql::parser::DFParserBuilder;
use datafusion_sql::planner::{ParserOptions, PlannerContext, SqlToRel};

/// The scalar functions and syntax planners SQL text may use: DataFusion's defaults (string, date/time,
/// math, regex, unicode, encoding, `CAST`, `CASE`, `coalesce`, ...).
pub(super) struct Functions {
    scalar: HashMap<String, Arc<ScalarUDF>>,
    planners: Vec<Arc<dyn ExprPlanner>>,
    options: ConfigOptions,
}

impl Functions {
    pub(super) fn new() -> Functions {
        let mut scalar = HashMap::new();
        for function in datafusion_functions::all_default_functions() {
            for alias in function.aliases() {
                scalar.insert(alias.clone(), function.clone());
            }
            scalar.insert(function.name().to_string(), function);
        }
        let planners: Vec<Arc<dyn ExprPlanner>> = vec![
            Arc::new(datafusion_functions::core::planner::CoreFunctionPlanner::default()),
            Arc::new(datafusion_functions::datetime::planner::DatetimeFunctionPlanner),
            Arc::new(datafusion_functions::unicode::planner::UnicodeFunctionPlanner),
        ];
        Functions {
            scalar,
            planners,
            options: ConfigOptions::default(),
        }
    }

    /// Parses `sql` (an expression with an optional `AS name`) against `schema`, coerces its types and
    /// simplifies it (`CAST(flag AS BIGINT) = 1` becomes `flag = 1`). Returns the logical expression, for
    /// its name, and the physical one, for evaluation.
    pub(super) fn compile(
        &self,
        sql: &str,
        schema: &DFSchema,
    ) -> Result<(Expr, Arc<dyn PhysicalExpr>)> {
        let dialect = datafusion_sql::sqlparser::dialect::GenericDialect {};
        let parsed = DFParserBuilder::new(sql)
            .with_dialect(&dialect)
            .build()?
            .parse_into_expr()?;
        // Column names are matched as written (DataFusion would fold unquoted names to lower case, so
        // `zipCode` would not find the column `zipCode`); string types stay `Utf8`, as the stages write.
        let options = ParserOptions::new()
            .with_enable_ident_normalization(false)
            .with_map_string_types_to_utf8view(false);
        let planner = SqlToRel::new_with_options(self, options);
        let expr = planner.sql_to_expr_with_alias(parsed, schema, &mut PlannerContext::new())?;
        // With the planning time set, the simplifier folds `now()` into a constant (DataFusion's physical
        // `now()` refuses to run unfolded): it is the time the pipeline was planned.
        let context = SimplifyContext::builder()
            .with_schema(Arc::new(schema.clone()))
            .with_config_options(Arc::new(self.options.clone()))
            .with_current_time()
            .build();
        let simplifier = ExprSimplifier::new(context);
        let expr = simplifier.coerce(expr, schema)?;
        let physical = create_physical_expr(
            &simplifier.simplify(expr.clone())?,
            schema,
            &ExecutionProps::new(),
            &PhysicalPlanningContext::default(),
        )?;
        Ok((expr, physical))
    }
}

/// What the SQL planner asks of a session; expressions see functions and no tables.
impl ContextProvider for Functions {
    fn get_table_source(&self, name: TableReference) -> Result<Arc<dyn TableSource>> {
        Err(DataFusionError::Plan(format!(
            "`{name}`: an expression cannot read a table"
        )))
    }

    fn get_expr_planners(&self) -> &[Arc<dyn ExprPlanner>] {
        &self.planners
    }

    fn get_function_meta(&self, name: &str) -> Option<Arc<ScalarUDF>> {
        self.scalar.get(name).cloned()
    }

    fn get_higher_order_meta(&self, _name: &str) -> Option<Arc<HigherOrderUDF>> {
        None
    }

    fn get_aggregate_meta(&self, _name: &str) -> Option<Arc<AggregateUDF>> {
        None
    }

    fn get_window_meta(&self, _name: &str) -> Option<Arc<WindowUDF>> {
        None
    }

    fn get_variable_type(&self, _variable_names: &[String]) -> Option<DataType> {
        None
    }

    fn options(&self) -> &ConfigOptions {
        &self.options
    }

    fn udf_names(&self) -> Vec<String> {
        self.scalar.keys().cloned().collect()
    }

    fn higher_order_function_names(&self) -> Vec<String> {
        Vec::new()
    }

    fn udaf_names(&self) -> Vec<String> {
        Vec::new()
    }

    fn udwf_names(&self) -> Vec<String> {
        Vec::new()
    }
}
